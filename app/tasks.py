"""The Celery tasks: run one outbox item, drain the inbox, and sweep for work whose nudge was lost.

Imported by `threadline worker` only; the web process publishes by task name (`app.celery_app`).
While the database is away (a restart, a failover) a task says so in one WARNING line and ends: its
work stays in the outbox and inbox tables, and the sweep offers it again once the database is back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from sqlalchemy.exc import InterfaceError, OperationalError

from app.celery_app import RUN_INBOX, RUN_OUTBOX, SWEEP_OUTBOX, celery_app, nudge, nudge_inbox
from app.container import Container, build_container


@cache
def _container() -> Container:
    # Built on first use inside the worker process, from the same settings as the web process.
    return build_container()


log = logging.getLogger(__name__)


@contextmanager
def _database_away(task: str) -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError) as exc:  # not a bug: no traceback, nothing lost
        log.warning(
            "%s: database unavailable (%s); the sweep offers the work again", task, type(exc.orig).__name__
        )


@celery_app.task(name=RUN_OUTBOX)
def run_outbox(outbox_id: int) -> None:
    with _database_away(RUN_OUTBOX):
        for offer in _container().runner.run(outbox_id).offers:
            nudge(offer)


@celery_app.task(name=RUN_INBOX)
def run_inbox() -> int:
    with _database_away(RUN_INBOX):
        return _container().inbox.run()
    return 0


@celery_app.task(name=SWEEP_OUTBOX)
def sweep_outbox() -> int:
    with _database_away(SWEEP_OUTBOX):
        container = _container()
        due = container.runner.due()
        for offer in due:
            nudge(offer)
        if container.inbox.waiting():
            nudge_inbox()
        container.inbox.purge()
        container.remind_sla()
        return len(due)
    return 0
