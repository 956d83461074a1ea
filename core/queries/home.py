"""App Home: what is mine, what is waiting, how many."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from core.models import Conversation, Member, Status

ACTIVE = (Status.OPEN, Status.PENDING)


@dataclass(frozen=True)
class HomeSummary:
    mine: list[Conversation]  # open first, then most unread, then most recent
    unassigned: list[Conversation]
    mine_open: int
    unassigned_open: int


def home_summary(
    session: Session, member: Member | None, *, channels: Collection[str], limit: int = 10
) -> HomeSummary:
    """What a teammate sees in App Home, among the conversations living in `channels` (the Slack
    channels they are in: nobody sees a conversation they may not act on)."""

    def newest_first(query: Select[Conversation]) -> Select[Conversation]:
        needs_attention = case((Conversation.status == Status.OPEN, 0), else_=1)
        return query.order_by(
            needs_attention, Conversation.unread_count.desc(), Conversation.last_activity_at.desc()
        )

    active = Conversation.status.in_(ACTIVE) & Conversation.slack_channel.in_(list(channels))
    mine: list[Conversation] = []
    mine_open = 0
    if member is not None:
        owned = select(Conversation).where(active, Conversation.assignee_id == member.id)
        mine = list(session.scalars(newest_first(owned).limit(limit)))
        mine_open = _count(session, active, Conversation.assignee_id == member.id)
    waiting = select(Conversation).where(active, Conversation.assignee_id.is_(None))
    return HomeSummary(
        mine=mine,
        unassigned=list(session.scalars(newest_first(waiting).limit(limit))),
        mine_open=mine_open,
        unassigned_open=_count(session, active, Conversation.assignee_id.is_(None)),
    )


def _count(session: Session, *conditions: object) -> int:
    return session.scalar(select(func.count()).select_from(Conversation).where(*conditions)) or 0  # type: ignore[arg-type]
