"""Finding the row a Slack request or a provider update names."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Conversation, Member, Tag


def find_member(session: Session, slack_user_id: str) -> Member | None:
    return session.scalar(select(Member).where(Member.slack_user_id == slack_user_id))


def conversation_for_thread(session: Session, slack_channel: str, thread_ts: str) -> Conversation | None:
    return session.scalar(
        select(Conversation).where(
            Conversation.slack_channel == slack_channel, Conversation.slack_thread_ts == thread_ts
        )
    )


def slack_channels_in_use(session: Session) -> list[str]:
    """The Slack channels conversations live in."""
    return list(
        session.scalars(
            select(Conversation.slack_channel).where(Conversation.slack_channel.is_not(None)).distinct()
        )
    )


def tag_names(session: Session) -> list[str]:
    return list(session.scalars(select(Tag.name).order_by(Tag.name)))
