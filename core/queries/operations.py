"""What an operator asks: how much work waits, what is parked, which connections are broken.

Read by `threadline check` and by the /metrics collector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import (
    ChannelAccount,
    Direction,
    Health,
    Inbox,
    InboxStatus,
    Message,
    Outbox,
    OutboxStatus,
    utcnow,
)


@dataclass(frozen=True)
class Parked:
    id: int
    source: str
    reason: str


@dataclass(frozen=True)
class Connection:
    channel: str
    account: str
    broken: bool
    reason: str | None
    since: datetime | None
    last_message_at: datetime | None


@dataclass
class WorkSummary:
    inbox: dict[str, int] = field(default_factory=dict)  # by status
    outbox: dict[str, int] = field(default_factory=dict)  # pending, running and failed, by status
    inbox_oldest_seconds: float = 0.0  # of what waits to be processed
    outbox_oldest_seconds: float = 0.0  # of what is due and waits for a worker
    parked: list[Parked] = field(default_factory=list)  # the newest few
    connections: list[Connection] = field(default_factory=list)
    messages: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, direction) → stored
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)  # replies: (channel, status) → n


def work_summary(session: Session, *, parked_shown: int = 3) -> WorkSummary:
    now = utcnow()
    summary = WorkSummary()
    for status, count in session.execute(
        select(Inbox.status, func.count()).where(Inbox.status != InboxStatus.DONE).group_by(Inbox.status)
    ):
        summary.inbox[str(status)] = int(count)
    for job_status, count in session.execute(
        select(Outbox.status, func.count()).where(Outbox.status != OutboxStatus.DONE).group_by(Outbox.status)
    ):
        summary.outbox[str(job_status)] = int(count)
    for channel, direction, delivery, count in session.execute(
        select(Message.channel, Message.direction, Message.delivery_status, func.count()).group_by(
            Message.channel, Message.direction, Message.delivery_status
        )
    ):
        key = (channel, str(direction))
        summary.messages[key] = summary.messages.get(key, 0) + int(count)
        if direction == Direction.OUTBOUND and delivery is not None:
            summary.deliveries[(channel, str(delivery))] = int(count)
    oldest_inbox = session.scalar(
        select(func.min(Inbox.received_at)).where(Inbox.status.in_([InboxStatus.NEW, InboxStatus.RUNNING]))
    )
    oldest_due = session.scalar(
        select(func.min(Outbox.next_attempt_at)).where(
            Outbox.status == OutboxStatus.PENDING, Outbox.next_attempt_at <= now
        )
    )
    summary.inbox_oldest_seconds = _age(now, oldest_inbox)
    summary.outbox_oldest_seconds = _age(now, oldest_due)
    summary.parked = [
        Parked(row.id, row.source, row.last_error or "")
        for row in session.execute(
            select(Inbox.id, Inbox.source, Inbox.last_error)
            .where(Inbox.status == InboxStatus.PARKED)
            .order_by(Inbox.id.desc())
            .limit(parked_shown)
        )
    ]
    summary.connections = [
        Connection(
            row.channel,
            row.account,
            row.health == Health.BROKEN,
            row.reason,
            row.broken_since,
            row.last_message_at,
        )
        for row in session.scalars(
            select(ChannelAccount).order_by(ChannelAccount.channel, ChannelAccount.account)
        )
    ]
    return summary


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # stored naive on SQLite, always UTC
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())
