"""The Celery tasks: run one outbox item, and sweep for items whose nudge was lost or whose retry is due.

Imported by `threadline worker` only; the web process publishes by task name (`app.celery_app`).
"""

from __future__ import annotations

from functools import cache

from app.celery_app import RUN_OUTBOX, SWEEP_OUTBOX, celery_app, nudge
from app.container import Container, build_container


@cache
def _container() -> Container:
    # Built on first use inside the worker process, from the same settings as the web process.
    return build_container()


@celery_app.task(name=RUN_OUTBOX)
def run_outbox(outbox_id: int) -> None:
    _container().runner.run(outbox_id)


@celery_app.task(name=SWEEP_OUTBOX)
def sweep_outbox() -> int:
    due = _container().runner.due()
    for outbox_id in due:
        nudge(outbox_id)
    return len(due)
