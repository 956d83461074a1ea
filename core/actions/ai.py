"""The AI's turn, committed: reply, hand off, or skip — decided at commit time, under the
conversation's lock, so a teammate who replied or took over meanwhile always wins.

The agent (ai/) thinks with no transaction open; `do_ai_turn` is the one transaction that follows.
Its compare-and-set: the conversation's AI mode is still active, the message answered is still the
lead's newest, and no earlier run of this turn already answered it (a retried job). Otherwise the
turn is recorded as skipped and nothing is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from core.actions.common import Actor, queue, record
from core.actions.locks import lock_conversation
from core.actions.transitions import set_ai_mode, set_status, stop_waiting
from core.models import (
    AIDecision,
    AIMode,
    AIOutcome,
    Author,
    DeliveryStatus,
    Direction,
    Message,
    Status,
    utcnow,
)
from core.outbox import JobKind
from core.queries.ai_turn import turn_is_current

AI = Actor(Author.AI)


@dataclass(frozen=True)
class AITurn:
    """What the agent concluded for one lead message. `reply` None (or `reasons` given) hands off."""

    model: str
    reply: str | None = None
    intent: str | None = None
    confidence: float | None = None
    reasoning: str | None = None
    reasons: list[str] = field(default_factory=list)  # why it hands off, in words
    knowledge: list[dict[str, Any]] = field(default_factory=list)  # {"id", "source", "title"}
    latency_ms: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def hands_off(self) -> bool:
        return self.reply is None or not self.reply.strip() or bool(self.reasons)


@dataclass(frozen=True)
class TurnResult:
    outcome: AIOutcome
    decision_id: int
    reply_message_id: int | None = None


def do_ai_turn(session: Session, conversation_id: int, answered_message_id: int, turn: AITurn) -> TurnResult:
    """Store and queue the AI's reply, or hand the conversation to the team, if the turn is still
    the AI's to take; else record it as skipped."""
    conversation = lock_conversation(session, conversation_id)
    if not turn_is_current(session, conversation.id, conversation.ai_mode, answered_message_id):
        return _decided(session, conversation_id, answered_message_id, turn, AIOutcome.SKIPPED)
    if turn.hands_off:
        set_ai_mode(session, conversation, AIMode.PAUSED, AI)
        decision = _decided(session, conversation_id, answered_message_id, turn, AIOutcome.HANDED_OFF)
        record(
            session,
            conversation,
            "ai_handoff",
            AI,
            old={"ai_mode": AIMode.ACTIVE.value},
            new={"decision_id": decision.decision_id, "reasons": list(turn.reasons)},
        )
        conversation.last_activity_at = utcnow()
        queue(session, JobKind.AI_HANDOFF, conversation, payload={"decision_id": decision.decision_id})
        queue(session, JobKind.MIRROR, conversation)  # the card says AI: paused
        return decision
    now = utcnow()
    message = Message(
        conversation=conversation,
        channel=conversation.channel,
        direction=Direction.OUTBOUND,
        author=Author.AI,
        text=turn.reply or "",
        delivery_status=DeliveryStatus.QUEUED,
        created_at=now,
    )
    session.add(message)
    conversation.unread_count = 0
    conversation.last_activity_at = now
    stop_waiting(conversation)
    if conversation.first_response_at is None:
        conversation.first_response_at = now
    if conversation.status != Status.PENDING:
        set_status(session, conversation, Status.PENDING, AI)
    session.flush()
    result = _decided(session, conversation_id, answered_message_id, turn, AIOutcome.REPLIED, message.id)
    record(
        session,
        conversation,
        "ai_reply",
        AI,
        new={"message_id": message.id, "decision_id": result.decision_id},
    )
    queue(session, JobKind.DELIVER, conversation, message)
    queue(session, JobKind.MIRROR, conversation)
    return result


def do_ai_skip(session: Session, conversation_id: int, answered_message_id: int, *, model: str) -> TurnResult:
    """The turn was no longer the AI's when it started (a teammate acted, or the lead wrote again)."""
    return _decided(session, conversation_id, answered_message_id, AITurn(model=model), AIOutcome.SKIPPED)


def _decided(
    session: Session,
    conversation_id: int,
    answered_message_id: int,
    turn: AITurn,
    outcome: AIOutcome,
    reply_message_id: int | None = None,
) -> TurnResult:
    decision = AIDecision(
        conversation_id=conversation_id,
        answered_message_id=answered_message_id,
        reply_message_id=reply_message_id,
        outcome=outcome.value,
        intent=turn.intent,
        confidence=turn.confidence,
        reasoning=turn.reasoning,
        escalate=outcome == AIOutcome.HANDED_OFF,
        reasons=list(turn.reasons),
        knowledge=list(turn.knowledge),
        model=turn.model[:200],
        latency_ms=turn.latency_ms,
        prompt_tokens=turn.prompt_tokens,
        completion_tokens=turn.completion_tokens,
        created_at=utcnow(),
    )
    session.add(decision)
    session.flush()
    return TurnResult(outcome, decision.id, reply_message_id)
