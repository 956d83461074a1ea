"""What every use-case shares: who acted, the typed results, the audit trail and queued work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import outbox
from core.models import Author, Campaign, Conversation, Event, Member, Message
from core.outbox import JobKind


@dataclass(frozen=True)
class Actor:
    """Who did it: a teammate (by member id), the AI, a lead or the system."""

    kind: Author
    member_id: int | None = None

    @classmethod
    def member(cls, member: Member) -> Actor:
        return cls(Author.MEMBER, member.id)


SYSTEM = Actor(Author.SYSTEM)
LEAD = Actor(Author.LEAD)


@dataclass(frozen=True)
class Received:
    conversation_id: int
    message_id: int
    duplicate: bool  # the provider sent this message before; nothing was changed


@dataclass(frozen=True)
class Changed:
    conversation_id: int
    changed: bool  # False when the conversation already was in the asked-for state


@dataclass(frozen=True)
class Posted:
    conversation_id: int
    message_id: int
    duplicate: bool  # this Slack message was already handled (a retried event)


def record(
    session: Session,
    conversation: Conversation,
    kind: str,
    actor: Actor,
    *,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
) -> None:
    """Write the audit event for a state change: who, what, old and new."""
    session.add(
        Event(
            conversation_id=conversation.id,
            kind=kind,
            actor=actor.kind,
            member_id=actor.member_id,
            old=old,
            new=new,
        )
    )


def queue(
    session: Session,
    kind: JobKind,
    conversation: Conversation,
    message: Message | None = None,
    *,
    payload: dict[str, Any] | None = None,
) -> None:
    """Queue outbox work in the caller's transaction; it is handed to a worker after commit.

    Replies to leads, notifications and a new conversation's first card go before backlog work.
    """
    urgent = kind != JobKind.MIRROR or conversation.slack_thread_ts is None
    outbox.queue(
        session,
        kind,
        conversation.id,
        message_id=message.id if message is not None else None,
        payload=payload,
        priority=0 if urgent else 1,
    )


def campaign_named(session: Session, name: str) -> Campaign:
    """The campaign of this name, whatever its case; created when new."""
    campaign = session.scalar(select(Campaign).where(func.lower(Campaign.name) == name.lower()).limit(1))
    if campaign is None:
        campaign = Campaign(name=name)
        session.add(campaign)
        session.flush()  # two creating it at once: one loses the race, retries and finds it
    return campaign
