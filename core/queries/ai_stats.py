"""What the team asks about the AI: why it answered as it did (the stored decision), and what its turns
cost in a period (`/leads stats`, /metrics)."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Subquery, func, select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.models import AIDecision, AIOutcome, Conversation, KnowledgeEntry, KnowledgeStatus, Member, Message


@dataclass(frozen=True)
class Why:
    decision: AIDecision
    feedback_by: str | None  # the teammate's name
    asked: str  # the lead message the AI answered
    answered: str  # what the AI wrote (empty when it handed off)


def why(session: Session, conversation_id: int, message_id: int) -> Why:
    """The decision behind an AI message of this conversation."""
    message = session.get(Message, message_id)
    decision = session.scalar(
        select(AIDecision).where(AIDecision.reply_message_id == message_id).order_by(AIDecision.id).limit(1)
    )
    if message is None or message.conversation_id != conversation_id or decision is None:
        raise NotFound("This message has no stored AI decision.")
    member = session.get(Member, decision.feedback_by_id) if decision.feedback_by_id is not None else None
    asked = session.get(Message, decision.answered_message_id)
    return Why(decision, member.name if member else None, asked.text if asked else "", message.text)


def why_decision(session: Session, conversation_id: int, decision_id: int) -> Why:
    """A decision of this conversation by its id (the hand-off notice's Why?)."""
    decision = session.get(AIDecision, decision_id)
    if decision is None or decision.conversation_id != conversation_id:
        raise NotFound("This conversation has no such AI decision.")
    member = session.get(Member, decision.feedback_by_id) if decision.feedback_by_id is not None else None
    asked = session.get(Message, decision.answered_message_id)
    reply = session.get(Message, decision.reply_message_id) if decision.reply_message_id is not None else None
    return Why(
        decision, member.name if member else None, asked.text if asked else "", reply.text if reply else ""
    )


@dataclass(frozen=True)
class AIStats:
    turns: int  # AI turns decided in the period (replied, handed off or skipped)
    outcomes: dict[str, int] = field(default_factory=dict)  # by AIOutcome value
    latency_p50_ms: int | None = None
    latency_p95_ms: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def handoff_rate(self) -> float | None:
        decided = self.outcomes.get(AIOutcome.REPLIED, 0) + self.outcomes.get(AIOutcome.HANDED_OFF, 0)
        return self.outcomes.get(AIOutcome.HANDED_OFF, 0) / decided if decided else None


def ai_stats(session: Session, *, since: datetime | None, channels: Collection[str] | None = None) -> AIStats:
    """AI turns in the period; with `channels`, only conversations living in those Slack channels."""
    where: list[ColumnElement[bool]] = [] if since is None else [AIDecision.created_at >= since]
    base = select(AIDecision)
    if channels is not None:
        base = base.join(Conversation, Conversation.id == AIDecision.conversation_id)
        where.append(Conversation.slack_channel.in_(list(channels)))
    decisions = base.where(*where).subquery()
    outcomes = {
        str(outcome): int(count)
        for outcome, count in session.execute(
            select(decisions.c.outcome, func.count()).group_by(decisions.c.outcome)
        )
    }
    turns = sum(outcomes.values())
    prompt, completion = session.execute(
        select(
            func.coalesce(func.sum(decisions.c.prompt_tokens), 0),
            func.coalesce(func.sum(decisions.c.completion_tokens), 0),
        )
    ).one()
    # Latency of turns that asked the model (a skipped turn may not have); percentiles by order, since
    # SQLite has no percentile function.
    timed = [decisions.c.latency_ms > 0]
    count = session.scalar(select(func.count()).select_from(decisions).where(*timed)) or 0
    return AIStats(
        turns=turns,
        outcomes=outcomes,
        latency_p50_ms=_percentile(session, decisions, timed, count, 0.50),
        latency_p95_ms=_percentile(session, decisions, timed, count, 0.95),
        prompt_tokens=int(prompt),
        completion_tokens=int(completion),
    )


def _percentile(
    session: Session, decisions: Subquery, timed: list[ColumnElement[bool]], count: int, share: float
) -> int | None:
    if not count:
        return None
    latency = decisions.c.latency_ms
    rank = max(0, min(count - 1, math.ceil(share * count) - 1))  # nearest-rank
    return session.scalar(select(latency).where(*timed).order_by(latency).offset(rank).limit(1))


def pending_knowledge(session: Session, *, limit: int = 20) -> list[KnowledgeEntry]:
    """Corrections waiting for a teammate's review, oldest first."""
    return list(
        session.scalars(
            select(KnowledgeEntry)
            .where(KnowledgeEntry.status == KnowledgeStatus.PENDING)
            .order_by(KnowledgeEntry.id)
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class ToReview:
    """A correction waiting for review, where its review post is: the conversation's thread."""

    entry_id: int
    title: str
    slack_channel: str
    slack_thread_ts: str | None


def knowledge_to_review(
    session: Session, *, channels: Collection[str], limit: int = 10
) -> tuple[list[ToReview], int]:
    """Pending corrections of conversations living in `channels` (the reader's), oldest first; and how
    many there are in all."""
    where = [
        KnowledgeEntry.status == KnowledgeStatus.PENDING,
        Conversation.slack_channel.in_(list(channels)),
    ]
    joined = (
        select(
            KnowledgeEntry.id, KnowledgeEntry.title, Conversation.slack_channel, Conversation.slack_thread_ts
        )
        .join(AIDecision, AIDecision.id == KnowledgeEntry.decision_id)
        .join(Conversation, Conversation.id == AIDecision.conversation_id)
        .where(*where)
    )
    rows = [
        ToReview(row.id, row.title, row.slack_channel, row.slack_thread_ts)
        for row in session.execute(joined.order_by(KnowledgeEntry.id).limit(limit))
    ]
    total = session.scalar(select(func.count()).select_from(joined.subquery())) or 0
    return rows, int(total)
