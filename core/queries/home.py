"""App Home: what is mine, what is waiting, how many, my week, my notification settings."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from core.actions.members import Notifications
from core.models import AIMode, Conversation, Lead, Status
from core.queries.lookup import find_member
from core.queries.stats import Stats, conversation_stats

ACTIVE = (Status.OPEN, Status.PENDING)
ROWS = 20  # per list; App Home says how many more there are


@dataclass(frozen=True)
class HomeRow:
    """One conversation as a line of App Home (lead text raw: the builder escapes it)."""

    conversation_id: int
    lead: str  # name, else phone, else email
    company: str | None
    channel: str
    status: Status
    ai_mode: AIMode
    unread: int
    last_activity_at: datetime
    slack_channel: str
    slack_thread_ts: str | None


@dataclass(frozen=True)
class HomeSummary:
    mine: list[HomeRow]  # unread first, then newest activity
    unassigned: list[HomeRow]  # the lead waiting longest first
    mine_open: int
    unassigned_open: int
    week: Stats | None  # None: not a teammate yet, so nothing of theirs to count
    notifications: Notifications


def home_summary(
    session: Session, slack_user_id: str, *, channels: Collection[str], since: datetime, rows: int = ROWS
) -> HomeSummary:
    """What a teammate sees in App Home, among the conversations living in `channels` (the Slack
    channels they are in: nobody sees a conversation they may not act on). `since` starts "my week"."""
    member = find_member(session, slack_user_id)
    active = [Conversation.status.in_(ACTIVE), Conversation.slack_channel.in_(list(channels))]
    unassigned = Conversation.assignee_id.is_(None)
    waiting = _rows(
        session,
        [*active, unassigned],
        [Conversation.waiting_since.asc().nulls_last(), Conversation.last_activity_at.desc()],
        rows,
    )
    if member is None:
        return HomeSummary(
            [], waiting, 0, _count(session, *active, unassigned), None, Notifications(True, True)
        )
    mine = Conversation.assignee_id == member.id
    unread_first = case((Conversation.unread_count > 0, 0), else_=1)
    return HomeSummary(
        mine=_rows(session, [*active, mine], [unread_first, Conversation.last_activity_at.desc()], rows),
        unassigned=waiting,
        mine_open=_count(session, *active, mine),
        unassigned_open=_count(session, *active, unassigned),
        week=conversation_stats(session, since=since, channels=channels, member_id=member.id),
        notifications=Notifications(on_assign=member.notify_on_assign, on_message=member.notify_on_message),
    )


def _rows(session: Session, where: list[ColumnElement[bool]], order: list[Any], limit: int) -> list[HomeRow]:
    # Plain columns, not ORM objects: App Home needs a line per conversation, not its tags and history.
    query = (
        select(
            Conversation.id,
            Lead.name,
            Lead.phone,
            Lead.email,
            Lead.company,
            Conversation.channel,
            Conversation.status,
            Conversation.ai_mode,
            Conversation.unread_count,
            Conversation.last_activity_at,
            Conversation.slack_channel,
            Conversation.slack_thread_ts,
        )
        .join(Lead, Lead.id == Conversation.lead_id)
        .where(*where)
        .order_by(*order, Conversation.id.desc())
        .limit(limit)
    )
    return [_row(row) for row in session.execute(query)]


def _row(row: Any) -> HomeRow:
    (cid, name, phone, email, company, channel, status, ai_mode, unread, activity, where, thread) = row
    lead = next((str(v).strip() for v in (name, phone, email) if v and str(v).strip()), "Unknown lead")
    return HomeRow(
        conversation_id=int(cid),
        lead=lead,
        company=str(company) if company else None,
        channel=str(channel),
        status=Status(status),
        ai_mode=AIMode(ai_mode),
        unread=int(unread),
        last_activity_at=activity,
        slack_channel=str(where),
        slack_thread_ts=str(thread) if thread else None,
    )


def _count(session: Session, *conditions: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(Conversation).where(*conditions)) or 0
