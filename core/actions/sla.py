"""A lead kept waiting too long: one reminder in the thread per wait (THREADLINE_SLA_HOURS)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.actions.common import SYSTEM, queue, record
from core.models import Conversation, Status
from core.outbox import JobKind

BATCH = 200  # per sweep; the next sweep takes the rest


def do_queue_sla_reminders(session: Session, *, now: datetime, hours: float) -> int:
    """Mark every conversation whose lead has waited longer than `hours` as reminded, and queue its
    reminder; returns how many. Run by every sweep, on every worker, at once: a row another sweep holds
    is skipped (SKIP LOCKED), and `sla_reminded_at` keeps a wait to one reminder, across restarts."""
    overdue = list(
        session.scalars(
            select(Conversation)
            .where(
                Conversation.status != Status.CLOSED,
                Conversation.waiting_since <= now - timedelta(hours=hours),
                Conversation.sla_reminded_at.is_(None),
                Conversation.slack_thread_ts.is_not(None),  # a reminder goes in the thread
            )
            .order_by(Conversation.waiting_since)
            .limit(BATCH)
            .with_for_update(of=Conversation, skip_locked=True)
        )
    )
    for conversation in overdue:
        waiting_since = conversation.waiting_since
        assert waiting_since is not None
        conversation.sla_reminded_at = now
        record(
            session, conversation, "sla_reminder", SYSTEM, new={"waiting_since": waiting_since.isoformat()}
        )
        session.flush()
        # The wait it is about: a reminder that runs after the lead got an answer posts nothing.
        queue(session, JobKind.REMIND_SLA, conversation, payload={"waiting_since": waiting_since.isoformat()})
    return len(overdue)
