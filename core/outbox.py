"""Running outbox work: claim, run, record. The same code under Celery and the in-process worker.

An item is claimed atomically (pending → running, with a lease), its handler runs outside any
transaction, and the outcome is written back. A worker that dies mid-item leaves a lease that expires;
the sweeper then offers the item again. Handlers are therefore written to be safe to run twice.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update

from core.db import Database
from core.errors import RetryableDelivery
from core.metrics import OUTBOX_JOBS, OUTBOX_SECONDS
from core.models import Outbox, OutboxStatus, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 8


class JobKind(enum.StrEnum):
    """Every kind of outbox work, declared once. `app/container.py` registers one handler for each,
    and the runner refuses to start without all of them, so nothing can be queued that nobody takes."""

    MIRROR = "mirror"  # keep a conversation's Slack thread and card in step (bot.mirror)
    DELIVER = "deliver"  # send a message to the lead over their channel (core.delivery)
    NOTIFY_ASSIGNEE = "notify_assignee"  # DM the teammate a conversation was assigned to (bot.notify)


@dataclass(frozen=True)
class Job:
    """What a handler gets: a snapshot of the claimed outbox row."""

    id: int
    kind: JobKind
    conversation_id: int | None
    message_id: int | None
    payload: dict[str, object]
    attempts: int  # including this one

    @property
    def last_attempt(self) -> bool:
        return self.attempts >= MAX_ATTEMPTS


Handler = Callable[[Job], None]


class OutboxRunner:
    def __init__(self, db: Database, handlers: Mapping[JobKind, Handler]) -> None:
        missing = sorted(set(JobKind) - set(handlers))
        if missing:
            raise ValueError(f"no handler registered for outbox kinds {missing}")
        self.db = db
        self.handlers = dict(handlers)

    def run(self, outbox_id: int) -> bool:
        """Run one item if it is due and nobody else holds it. Returns whether it ran."""
        job = self._claim(outbox_id)
        if job is None:
            return False
        handler = self.handlers[job.kind]
        try:
            with OUTBOX_SECONDS.labels(job.kind).time():
                handler(job)
        except Exception as exc:
            self._failed(job, exc)
            OUTBOX_JOBS.labels(job.kind, "failed" if job.last_attempt else "retry").inc()
        else:
            self._done(job)
            OUTBOX_JOBS.labels(job.kind, "done").inc()
        return True

    def due(self, limit: int = 200) -> list[int]:
        """Items to offer again: pending and due, or running with an expired lease (a worker died)."""
        now = utcnow()
        with self.db.sessions() as session:
            return list(
                session.scalars(
                    select(Outbox.id)
                    .where(
                        or_(
                            (Outbox.status == OutboxStatus.PENDING) & (Outbox.next_attempt_at <= now),
                            (Outbox.status == OutboxStatus.RUNNING) & (Outbox.locked_until < now),
                        )
                    )
                    .order_by(Outbox.id)
                    .limit(limit)
                )
            )

    def _claim(self, outbox_id: int) -> Job | None:
        now = utcnow()
        with self.db.transaction() as session:
            claimed = session.execute(
                update(Outbox)
                .where(
                    Outbox.id == outbox_id,
                    or_(
                        (Outbox.status == OutboxStatus.PENDING) & (Outbox.next_attempt_at <= now),
                        (Outbox.status == OutboxStatus.RUNNING) & (Outbox.locked_until < now),
                    ),
                )
                .values(status=OutboxStatus.RUNNING, locked_until=now + LEASE, attempts=Outbox.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = session.get_one(Outbox, outbox_id, populate_existing=True)
            if row.kind not in set(JobKind):
                # Queued by a version that had this kind: nobody here can run it, so say so once.
                log.error("outbox %s: no handler for kind %r; marked failed", row.id, row.kind)
                row.status, row.last_error, row.locked_until = (
                    OutboxStatus.FAILED,
                    "no handler for this kind",
                    None,
                )
                return None
            return Job(
                row.id,
                JobKind(row.kind),
                row.conversation_id,
                row.message_id,
                dict(row.payload),
                row.attempts,
            )

    def _done(self, job: Job) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(Outbox)
                .where(Outbox.id == job.id)
                .values(status=OutboxStatus.DONE, done_at=utcnow(), locked_until=None, last_error=None)
            )

    def _failed(self, job: Job, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        give_up = job.last_attempt
        retry_at = utcnow() + _backoff(job.attempts, exc)
        if give_up:
            log.error(
                "outbox %s (%s) failed for good after %d attempts: %s", job.id, job.kind, job.attempts, error
            )
        else:
            log.warning(
                "outbox %s (%s) attempt %d failed, retrying: %s", job.id, job.kind, job.attempts, error
            )
        with self.db.transaction() as session:
            session.execute(
                update(Outbox)
                .where(Outbox.id == job.id)
                .values(
                    status=OutboxStatus.FAILED if give_up else OutboxStatus.PENDING,
                    next_attempt_at=retry_at,
                    locked_until=None,
                    last_error=error,
                )
            )


def _backoff(attempts: int, exc: Exception) -> timedelta:
    if isinstance(exc, RetryableDelivery) and exc.retry_after:
        return timedelta(seconds=exc.retry_after)
    return timedelta(seconds=min(2 ** (attempts - 1), 300))
