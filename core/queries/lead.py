"""What View lead shows: the lead, their numbers, and their other conversations.

Only conversations in Slack channels the reader is in count or are listed (`channels`): the others
are only counted as hidden, so nobody learns what was said in a channel they cannot read.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.models import Conversation, DeliveryStatus, Direction, Message, Status

OTHERS_SHOWN = 10


@dataclass(frozen=True)
class OtherConversation:
    id: int
    channel: str
    status: Status
    slack_channel: str
    slack_thread_ts: str | None
    last_activity_at: datetime


@dataclass(frozen=True)
class LeadView:
    conversation: Conversation  # the one View lead was opened from, with its lead and campaign
    from_lead: int  # messages the lead wrote
    to_lead: int  # messages we sent them (not failed, not withdrawn)
    notes: int
    conversations: int  # the lead's conversations the reader can see, this one included
    first_contact: datetime | None
    last_contact: datetime | None
    others: list[OtherConversation]  # newest activity first, at most OTHERS_SHOWN
    more_others: int  # visible, but past OTHERS_SHOWN
    hidden: int  # in channels the reader is not in


def lead_channels(session: Session, conversation_id: int) -> list[str]:
    """The Slack channels the lead of `conversation_id` has conversations in (to check the reader)."""
    lead_id = select(Conversation.lead_id).where(Conversation.id == conversation_id).scalar_subquery()
    return list(
        session.scalars(
            select(Conversation.slack_channel)
            .where(Conversation.lead_id == lead_id, Conversation.slack_channel.is_not(None))
            .distinct()
        )
    )


def _others() -> Select[int, str, Status, str | None, str | None, datetime]:
    """The columns of an OtherConversation."""
    return select(
        Conversation.id,
        Conversation.channel,
        Conversation.status,
        Conversation.slack_channel,
        Conversation.slack_thread_ts,
        Conversation.last_activity_at,
    )


def other_threads(session: Session, conversation: Conversation, *, limit: int = 5) -> list[OtherConversation]:
    """The lead's other conversations that have a thread, newest activity first: what the card
    links to, on other channels or other threads of the same channel."""
    rows = session.execute(
        _others()
        .where(
            Conversation.lead_id == conversation.lead_id,
            Conversation.id != conversation.id,
            Conversation.slack_thread_ts.is_not(None),
        )
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(limit)
    ).all()
    return [OtherConversation(**row._asdict()) for row in rows]


def lead_view(session: Session, conversation_id: int, *, channels: Collection[str]) -> LeadView:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("This conversation no longer exists.")
    conversation.lead.campaign  # noqa: B018 - loaded now, read after the session closes
    visible = or_(Conversation.id == conversation.id, Conversation.slack_channel.in_(list(channels)))
    of_lead = Conversation.lead_id == conversation.lead_id
    ids = select(Conversation.id).where(of_lead, visible)
    sent_at = func.coalesce(Message.provider_sent_at, Message.created_at)  # when it was written, if known
    counted = session.execute(
        select(
            func.count().filter(Message.direction == Direction.INBOUND),
            func.count().filter(
                and_(
                    Message.direction == Direction.OUTBOUND,
                    Message.deleted_at.is_(None),
                    or_(Message.delivery_status.is_(None), Message.delivery_status != DeliveryStatus.FAILED),
                )
            ),
            func.count().filter(Message.direction == Direction.NOTE),
            func.min(sent_at).filter(Message.direction != Direction.NOTE),
            func.max(sent_at).filter(Message.direction != Direction.NOTE),
        ).where(Message.conversation_id.in_(ids))
    ).one()
    total = session.scalar(select(func.count()).select_from(Conversation).where(of_lead)) or 0
    rows = session.execute(
        _others()
        .where(of_lead, visible, Conversation.id != conversation.id)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
    ).all()
    others = [OtherConversation(**row._asdict()) for row in rows[:OTHERS_SHOWN]]
    return LeadView(
        conversation=conversation,
        from_lead=counted[0],
        to_lead=counted[1],
        notes=counted[2],
        conversations=len(rows) + 1,
        first_contact=counted[3],
        last_contact=counted[4],
        others=others,
        more_others=len(rows) - len(others),
        hidden=total - len(rows) - 1,
    )
