"""Running outbox work: claim, run, record. The same code under Celery and the in-process worker.

Scheduling (DESIGN §3):
- *Lanes.* Work of one kind for one conversation runs one at a time. Deliveries also keep their order:
  a delivery waits while an earlier one for the same conversation is unfinished, so the lead reads
  replies in the order the rep wrote them. Another conversation's work never waits on this lane.
- *No sleeping.* A handler that may not go on yet (Slack's pace, a Retry-After) raises `Deferred`; the
  item is rescheduled for that moment, uncounted, and the worker takes the next one.
- *Leases that belong to someone.* A claim bumps the row's fencing token (`lease`) and holds it until
  `locked_until`, renewed in the background while the handler runs. Only the holder of the current
  token may record the outcome; a worker that lost its lease records nothing.
- *Giving up.* Only deliveries to a lead give up (after MAX_ATTEMPTS; the rep then sees "failed" and a
  Retry button). Slack work waits for Slack as long as it takes, with the backoff capped.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists, or_, select, true, update
from sqlalchemy.orm import Session, aliased

from core.db import Database, Offer
from core.errors import Deferred, NotFound, RetryableDelivery, Unrecoverable
from core.leases import LeaseRenewer
from core.log_context import log_context
from core.metrics import OUTBOX_JOBS, OUTBOX_SECONDS
from core.models import Conversation, Outbox, OutboxStatus, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 8
RETRY_CAP = timedelta(minutes=3)
OFFER_GRACE = timedelta(seconds=15)  # an offer not taken by then is presumed lost (a nudge Redis dropped)


class JobKind(enum.StrEnum):
    """Every kind of outbox work, declared once. `app/container.py` registers one handler for each,
    and the runner refuses to start without all of them, so nothing can be queued that nobody takes."""

    MIRROR = "mirror"  # keep a conversation's Slack thread and card in step (bot.mirror)
    DELIVER = "deliver"  # send a message to the lead over their channel (core.delivery)
    NOTIFY_ASSIGNEE = "notify_assignee"  # DM the teammate a conversation was assigned to (bot.notify)
    NOTIFY_MESSAGE = "notify_message"  # DM the assignee that their lead wrote (bot.notify)
    REMIND_SLA = "remind_sla"  # remind the thread that a lead has waited too long (bot.notify)
    CHANNEL_HEALTH = "channel_health"  # say in Slack that a lead channel broke or works again (bot.notify)
    AI_REPLY = "ai_reply"  # the AI's turn in a conversation; message_id = the lead message it answers (ai)
    REVIEW_KNOWLEDGE = "review_knowledge"  # post a correction for a teammate to approve (bot.review)
    AI_HANDOFF = "ai_handoff"  # say in the thread why the AI handed over, tell the assignee (bot.notify)


LANES = {JobKind.MIRROR, JobKind.DELIVER}  # one at a time per conversation
IN_ORDER = {JobKind.DELIVER}  # …and never overtaking an earlier one
GIVES_UP = {JobKind.DELIVER}


@dataclass(frozen=True)
class Job:
    """What a handler gets: a snapshot of the claimed outbox row."""

    id: int
    kind: JobKind
    conversation_id: int | None
    message_id: int | None
    payload: dict[str, object]
    attempts: int  # including this one
    lease: int = 0  # the fencing token this claim holds
    priority: int = 1

    @property
    def last_attempt(self) -> bool:
        return self.kind in GIVES_UP and self.attempts >= MAX_ATTEMPTS


@dataclass
class Outcome:
    """What became of one `run`: whether it ran, and what to offer workers next."""

    ran: bool
    offers: list[Offer] = field(default_factory=list)  # itself later (rescheduled), or the next in lane

    def __bool__(self) -> bool:
        return self.ran


Handler = Callable[[Job], None]


class OutboxRunner:
    def __init__(
        self,
        db: Database,
        handlers: Mapping[JobKind, Handler],
        *,
        lease: timedelta = LEASE,
        retry_cap: timedelta = RETRY_CAP,
    ) -> None:
        missing = sorted(set(JobKind) - set(handlers))
        if missing:
            raise ValueError(f"no handler registered for outbox kinds {missing}")
        self.db = db
        self.handlers = dict(handlers)
        self.lease = lease
        self.retry_cap = retry_cap
        self._renewer = LeaseRenewer(db, lease)

    def run(self, outbox_id: int) -> Outcome:
        """Run one item if it is due, its lane is free and nobody else holds it."""
        job = self._claim(outbox_id)
        if job is None:
            log.debug("outbox %s not claimed (not due, lane busy or taken)", outbox_id)
            return Outcome(False)
        handler = self.handlers[job.kind]
        offers: list[Offer] = []
        context = log_context(
            job=job.kind, outbox_id=job.id, conversation_id=job.conversation_id, message_id=job.message_id
        )
        with context, self._renewer.holding(job.id, job.lease):
            log.debug("outbox %s (%s) claimed, lease %s", job.id, job.kind, job.lease)
            try:
                with OUTBOX_SECONDS.labels(job.kind).time():
                    handler(job)
            except Deferred as exc:
                offers.append(self._defer(job, exc))
                OUTBOX_JOBS.labels(job.kind, "deferred").inc()
            except Exception as exc:
                retry = self._failed(job, exc)
                if retry is not None:
                    offers.append(retry)
                OUTBOX_JOBS.labels(job.kind, "retry" if retry else "failed").inc()
            else:
                self._finish(job, status=OutboxStatus.DONE, done_at=utcnow(), last_error=None)
                OUTBOX_JOBS.labels(job.kind, "done").inc()
        offers.extend(self._next_in_lane(job))
        return Outcome(True, offers)

    def due(self, limit: int = 200, *, fresh_start: bool = False) -> list[Offer]:
        """Items to offer workers: pending and due, or running with an expired lease (a worker died).

        Each is marked offered, so the next sweep does not offer it again while a worker may still be
        about to take it; an offer not taken within OFFER_GRACE is presumed lost and made again.
        `fresh_start` ignores earlier offers (nothing in this process holds them any more).
        """
        now = utcnow()
        query = select(Outbox.id, Outbox.priority).where(_claimable(now)).order_by(Outbox.priority, Outbox.id)
        if not fresh_start:
            query = query.where(or_(Outbox.offered_at.is_(None), Outbox.offered_at < now - OFFER_GRACE))
        with self.db.transaction() as session:
            rows = session.execute(query.limit(limit).with_for_update(skip_locked=True)).all()
            if rows:
                session.execute(
                    update(Outbox)
                    .where(Outbox.id.in_([row.id for row in rows]))
                    .values(offered_at=now)
                    .execution_options(synchronize_session=False)
                )
        return [Offer(row.id, row.priority) for row in rows]

    # --- claim and record ----------------------------------------------------------------------------

    def _claim(self, outbox_id: int) -> Job | None:
        now = utcnow()
        with self.db.transaction() as session:
            head = session.execute(
                select(Outbox.kind, Outbox.conversation_id).where(Outbox.id == outbox_id)
            ).one_or_none()
            if head is None:
                return None
            if head.kind in LANES and head.conversation_id is not None:
                # Claims in one conversation queue here, so two workers cannot both find the lane free.
                session.execute(
                    select(Conversation.id).where(Conversation.id == head.conversation_id).with_for_update()
                )
            claimed = session.execute(
                update(Outbox)
                .where(Outbox.id == outbox_id, _claimable(now), _lane_free(head.kind, now))
                .values(
                    status=OutboxStatus.RUNNING,
                    locked_until=now + self.lease,
                    attempts=Outbox.attempts + 1,
                    lease=Outbox.lease + 1,
                    offered_at=None,
                )
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
                row.lease,
                row.priority,
            )

    def _finish(self, job: Job, **values: object) -> bool:
        """Record the outcome, if this claim still holds the lease (the fencing token matches)."""
        with self.db.transaction() as session:
            recorded = session.execute(
                update(Outbox)
                .where(Outbox.id == job.id, Outbox.lease == job.lease, Outbox.status == OutboxStatus.RUNNING)
                .values(locked_until=None, **values)
                .execution_options(synchronize_session=False)
            )
        if recorded.rowcount != 1:  # type: ignore[attr-defined]
            log.warning(
                "outbox %s (%s): lease lost to another worker; its outcome is theirs", job.id, job.kind
            )
            return False
        return True

    def _defer(self, job: Job, exc: Deferred) -> Offer:
        at = utcnow() + timedelta(seconds=exc.seconds)
        log.debug("outbox %s (%s) deferred: %s", job.id, job.kind, exc)
        self._finish(
            job,
            status=OutboxStatus.PENDING,
            next_attempt_at=at,
            attempts=job.attempts - 1,  # waiting its turn is not a try
            offered_at=at,
        )
        return Offer(job.id, job.priority, at)

    def _failed(self, job: Job, exc: Exception) -> Offer | None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        give_up = job.last_attempt or isinstance(exc, NotFound | Unrecoverable)
        if give_up:
            log.error(
                "outbox %s (%s) failed for good after %d attempts: %s", job.id, job.kind, job.attempts, error
            )
            self._finish(job, status=OutboxStatus.FAILED, last_error=error)
            return None
        at = utcnow() + min(_backoff(job.attempts, exc), self.retry_cap)
        log.warning("outbox %s (%s) attempt %d failed, retrying: %s", job.id, job.kind, job.attempts, error)
        self._finish(job, status=OutboxStatus.PENDING, next_attempt_at=at, last_error=error, offered_at=at)
        return Offer(job.id, job.priority, at)

    def _next_in_lane(self, job: Job) -> list[Offer]:
        """The lane's next item, now that this one let go of it: offered at once, not at the next sweep."""
        if job.kind not in LANES or job.conversation_id is None:
            return []
        with self.db.sessions() as session:
            row = session.execute(
                select(Outbox.id, Outbox.priority)
                .where(
                    Outbox.conversation_id == job.conversation_id,
                    Outbox.kind == job.kind,
                    Outbox.status == OutboxStatus.PENDING,
                    Outbox.next_attempt_at <= utcnow(),
                )
                .order_by(Outbox.id)
                .limit(1)
            ).one_or_none()
        return [] if row is None else [Offer(row.id, row.priority)]


def queue(
    session: Session,
    kind: JobKind,
    conversation_id: int | None,
    *,
    message_id: int | None = None,
    payload: dict[str, object] | None = None,
    priority: int = 1,
) -> None:
    """Queue work in the caller's transaction (handed to a worker after commit).

    A conversation's mirror is coalesced: while one is still waiting, it will post everything new, so a
    second one would only queue behind it.
    """
    if kind == JobKind.MIRROR:
        # Holding the conversation's row keeps a claim of the waiting item (which takes it too) from
        # starting before this change commits, so the claimed mirror reads it.
        session.execute(select(Conversation.id).where(Conversation.id == conversation_id).with_for_update())
        waiting = session.scalar(
            select(Outbox.id).where(
                Outbox.conversation_id == conversation_id,
                Outbox.kind == JobKind.MIRROR,
                Outbox.status == OutboxStatus.PENDING,
                Outbox.priority <= priority,
            )
        )
        if waiting is not None:
            return
    session.add(
        Outbox(
            kind=kind,
            conversation_id=conversation_id,
            message_id=message_id,
            payload=payload or {},
            priority=priority,
            offered_at=utcnow(),  # it is handed over at commit; the sweep need not offer it too
        )
    )


def release(db: Database, offers: list[Offer]) -> None:
    """Nobody in this process will run these (a one-off command): let the next sweep offer them."""
    if offers:
        with db.transaction() as session:
            session.execute(
                update(Outbox)
                .where(Outbox.id.in_([offer.id for offer in offers]))
                .values(offered_at=None)
                .execution_options(synchronize_session=False)
            )


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        (Outbox.status == OutboxStatus.PENDING) & (Outbox.next_attempt_at <= now),
        (Outbox.status == OutboxStatus.RUNNING) & (Outbox.locked_until < now),
    )


def _lane_free(kind: str, now: datetime) -> ColumnElement[bool]:
    """No other live item of this lane runs; for ordered lanes, no earlier one is unfinished."""
    if kind not in LANES:
        return true()
    other = aliased(Outbox)
    same_lane = (
        (other.conversation_id == Outbox.conversation_id)
        & (other.kind == Outbox.kind)
        & (other.id != Outbox.id)
    )
    running = (other.status == OutboxStatus.RUNNING) & (other.locked_until >= now)
    if kind in IN_ORDER:
        earlier = (other.id < Outbox.id) & other.status.in_([OutboxStatus.PENDING, OutboxStatus.RUNNING])
        return ~exists().where(same_lane & or_(running, earlier))
    return ~exists().where(same_lane & running)


def _backoff(attempts: int, exc: Exception) -> timedelta:
    if isinstance(exc, RetryableDelivery) and exc.retry_after:
        return timedelta(seconds=exc.retry_after)
    return timedelta(seconds=min(2 ** (attempts - 1), 300))
