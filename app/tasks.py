"""The Celery tasks: run one outbox item, drain the inbox, and sweep for work whose nudge was lost.

Imported by `threadline worker` only; the web process publishes by task name (`app.celery_app`).
"""

from __future__ import annotations

from functools import cache

from app.celery_app import RUN_INBOX, RUN_OUTBOX, SWEEP_OUTBOX, celery_app, nudge, nudge_inbox
from app.container import Container, build_container


@cache
def _container() -> Container:
    # Built on first use inside the worker process, from the same settings as the web process.
    return build_container()


@celery_app.task(name=RUN_OUTBOX)
def run_outbox(outbox_id: int) -> None:
    for offer in _container().runner.run(outbox_id).offers:
        nudge(offer)


@celery_app.task(name=RUN_INBOX)
def run_inbox() -> int:
    return _container().inbox.run()


@celery_app.task(name=SWEEP_OUTBOX)
def sweep_outbox() -> int:
    container = _container()
    due = container.runner.due()
    for offer in due:
        nudge(offer)
    if container.inbox.waiting():
        nudge_inbox()
    container.inbox.purge()
    container.remind_sla()
    return len(due)
