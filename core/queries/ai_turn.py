"""What the AI's turn reads (one short read, no provider call inside): the conversation's state, the
lead, their history across all their conversations, and the approved knowledge entries.

Internal notes (Direction.NOTE) are never read here: what the model never receives it cannot repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.models import (
    AIDecision,
    AIMode,
    AIOutcome,
    Author,
    Conversation,
    Direction,
    KnowledgeEntry,
    KnowledgeStatus,
    Message,
)

HISTORY_LIMIT = 400  # messages read across the lead's conversations; the agent trims to its budget
REACTION = "reaction"
# Lead messages that ask nothing: a reaction, an out-of-office answer (email's `automatic`). A newer one
# of these does not take the turn from the message the AI is answering.
NOT_ASKING = (REACTION, "auto_reply")


@dataclass(frozen=True)
class Turn:
    """One message of the lead's history, as the agent may see it."""

    message_id: int
    author: Author  # LEAD, AI or MEMBER (system messages and notes are never here)
    channel: str
    text: str
    at: datetime


@dataclass(frozen=True)
class LeadDetails:
    name: str | None
    company: str | None
    title: str | None
    email: str | None
    phone: str | None
    score: int | None
    campaign: str | None


@dataclass(frozen=True)
class Knowledge:
    id: int
    title: str
    body: str


@dataclass(frozen=True)
class TurnContext:
    conversation_id: int
    answered_message_id: int
    channel: str
    ai_mode: AIMode
    current: bool  # AI still active and the answered message still the lead's newest
    assignee_id: int | None
    lead: LeadDetails
    history: list[Turn]  # oldest first, notes never included
    ai_turns_in_row: int  # the AI's replies in this conversation since a teammate last wrote to the lead
    knowledge: list[Knowledge]  # approved database entries


def newest_inbound_id(session: Session, conversation_id: int) -> int | None:
    """The lead's newest message in the conversation that asks for an answer (not a reaction, not an
    out-of-office reply)."""
    return session.scalar(
        select(Message.id)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.INBOUND,
            Message.kind.not_in(NOT_ASKING),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


def turn_is_current(session: Session, conversation_id: int, mode: AIMode, answered_message_id: int) -> bool:
    """Whether answering this lead message is still the AI's to do: the AI is active, the message is the
    lead's newest, no earlier run answered it or handed it off (a retried job), and nothing has been
    sent to the lead since (a teammate from the provider's own app)."""
    if mode != AIMode.ACTIVE or newest_inbound_id(session, conversation_id) != answered_message_id:
        return False
    answered = session.scalar(
        select(AIDecision.id)
        .where(
            AIDecision.answered_message_id == answered_message_id,
            AIDecision.outcome.in_([AIOutcome.REPLIED.value, AIOutcome.HANDED_OFF.value]),
        )
        .limit(1)
    )
    if answered is not None:
        return False
    later_outbound = session.scalar(
        select(Message.id)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.OUTBOUND,
            Message.id > answered_message_id,
        )
        .limit(1)
    )
    return later_outbound is None


def read_turn_context(session: Session, conversation_id: int, message_id: int) -> TurnContext:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} does not exist")
    lead = conversation.lead
    campaign = conversation.campaign or lead.campaign
    rows = list(
        session.scalars(
            select(Message)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Conversation.lead_id == lead.id,
                Message.direction.in_([Direction.INBOUND, Direction.OUTBOUND]),
                Message.author.in_([Author.LEAD, Author.AI, Author.MEMBER]),
                Message.deleted_at.is_(None),
                Message.kind != REACTION,
            )
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(HISTORY_LIMIT)
        )
    )
    rows.reverse()
    history = [
        Turn(row.id, row.author, row.channel, row.text or f"({row.kind})", row.created_at)
        for row in rows
        if row.direction != Direction.NOTE  # belt and braces: notes never reach the model
    ]
    knowledge = [
        Knowledge(entry.id, entry.title, entry.body)
        for entry in session.scalars(
            select(KnowledgeEntry)
            .where(KnowledgeEntry.status == KnowledgeStatus.APPROVED.value)
            .order_by(KnowledgeEntry.id)
        )
    ]
    return TurnContext(
        conversation_id=conversation.id,
        answered_message_id=message_id,
        channel=conversation.channel,
        ai_mode=conversation.ai_mode,
        current=turn_is_current(session, conversation.id, conversation.ai_mode, message_id),
        assignee_id=conversation.assignee_id,
        lead=LeadDetails(
            name=lead.name,
            company=lead.company,
            title=lead.title,
            email=lead.email,
            phone=lead.phone,
            score=lead.score,
            campaign=campaign.name if campaign is not None else None,
        ),
        history=history,
        ai_turns_in_row=_ai_turns_in_row(rows, conversation.id),
        knowledge=knowledge,
    )


def _ai_turns_in_row(rows: list[Message], conversation_id: int) -> int:
    """The AI's replies at the end of this conversation, back to the last one a teammate wrote."""
    count = 0
    for row in reversed(rows):
        if row.conversation_id != conversation_id or row.direction != Direction.OUTBOUND:
            continue
        if row.author != Author.AI:
            break
        count += 1
    return count
