"""The team's word on an AI turn: 👍/👎 on the AI's message, and a correction (what the answer should
have been), which becomes a *pending* knowledge entry a teammate reviews before the agent uses it.

Every click is idempotent: the same feedback twice changes nothing the second time, and the same
correction twice makes one entry. A new correction for the same answer replaces a pending one (that one
is rejected as superseded, so its review buttons say so) rather than piling up entries to review.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.actions.common import Actor, queue, record
from core.errors import InvalidAction, NotAllowed, NotFound
from core.models import AIDecision, Conversation, KnowledgeEntry, KnowledgeStatus, Message, utcnow
from core.outbox import JobKind

CORRECTION_LIMIT = 3000  # what one correction may say: a paragraph or two, not a manual
TITLE_LIMIT = 300  # knowledge_entry.title
CORRECTION = "correction"  # knowledge_entry.source of an entry made from a correction


class Rating(enum.StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class Feedback:
    decision_id: int
    conversation_id: int
    changed: bool  # False: it already said exactly this
    entry_id: int | None = None  # the pending knowledge entry a correction became


def lock_decision(session: Session, decision_id: int) -> AIDecision:
    decision = session.get(
        AIDecision, decision_id, with_for_update={"of": AIDecision}, populate_existing=True
    )
    if decision is None:
        raise NotFound(f"AI decision {decision_id} does not exist")
    return decision


def decision_for_message(session: Session, message_id: int) -> AIDecision:
    """The AI turn that wrote this message (the message an AI entry's buttons carry)."""
    decision = session.scalar(
        select(AIDecision).where(AIDecision.reply_message_id == message_id).order_by(AIDecision.id).limit(1)
    )
    if decision is None:
        raise NotFound("This message has no stored AI decision.")
    return decision


def do_rate_decision(session: Session, decision_id: int, rating: Rating, *, actor: Actor) -> Feedback:
    """👍 or 👎 on an AI turn, by a teammate; the latest rating counts, who and when are kept."""
    member_id = _member(actor)
    decision = lock_decision(session, decision_id)
    if decision.feedback == rating.value and decision.feedback_by_id == member_id:
        return Feedback(decision.id, decision.conversation_id, changed=False)
    old = {"feedback": decision.feedback, "by": decision.feedback_by_id}
    decision.feedback, decision.feedback_by_id, decision.feedback_at = rating.value, member_id, utcnow()
    conversation = session.get_one(Conversation, decision.conversation_id)
    record(
        session,
        conversation,
        "ai_feedback",
        actor,
        old=old,
        new={"decision_id": decision.id, "feedback": rating.value, "by": member_id},
    )
    return Feedback(decision.id, decision.conversation_id, changed=True)


def check_correction(text: str) -> str:
    """The correction as it will be stored; InvalidAction when there is nothing usable in it."""
    cleaned = text.strip()
    if not cleaned:
        raise InvalidAction("Write what the answer should have been.")
    if len(cleaned) > CORRECTION_LIMIT:
        raise InvalidAction(f"A correction can be at most {CORRECTION_LIMIT} characters ({len(cleaned)}).")
    return cleaned


def do_correct_decision(session: Session, decision_id: int, text: str, *, actor: Actor) -> Feedback:
    """👎 with what the answer should have been: a pending knowledge entry, posted for review."""
    member_id = _member(actor)
    correction = check_correction(text)
    decision = lock_decision(session, decision_id)
    conversation = session.get_one(Conversation, decision.conversation_id)
    earlier = list(
        session.scalars(
            select(KnowledgeEntry)
            .where(KnowledgeEntry.decision_id == decision.id, KnowledgeEntry.source == CORRECTION)
            .order_by(KnowledgeEntry.id)
        )
    )
    for entry in earlier:
        if entry.body == correction and entry.status != KnowledgeStatus.REJECTED:
            return Feedback(decision.id, decision.conversation_id, changed=False, entry_id=entry.id)
    for entry in earlier:
        if entry.status == KnowledgeStatus.PENDING:  # replaced by this one: its review buttons say so
            entry.status, entry.reviewed_by_id, entry.reviewed_at = (
                KnowledgeStatus.REJECTED,
                member_id,
                utcnow(),
            )
    decision.feedback, decision.feedback_by_id, decision.feedback_at = Rating.DOWN.value, member_id, utcnow()
    decision.correction = correction
    entry = KnowledgeEntry(
        title=_title(session, decision),
        body=correction,
        status=KnowledgeStatus.PENDING,
        source=CORRECTION,
        decision_id=decision.id,
        created_by_id=member_id,
    )
    session.add(entry)
    session.flush()
    record(
        session,
        conversation,
        "ai_correction",
        actor,
        new={"decision_id": decision.id, "entry_id": entry.id},
    )
    queue(session, JobKind.REVIEW_KNOWLEDGE, conversation, payload={"entry_id": entry.id})
    return Feedback(decision.id, decision.conversation_id, changed=True, entry_id=entry.id)


def _title(session: Session, decision: AIDecision) -> str:
    """What the lead asked, in one line: what the entry answers, and what retrieval matches it on."""
    answered = session.get(Message, decision.answered_message_id)
    asked = " ".join((answered.text if answered is not None else "").split())
    title = f"Lead asked: {asked}" if asked else f"Correction to AI answer #{decision.id}"
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1] + "…"


def _member(actor: Actor) -> int:
    if actor.member_id is None:
        raise NotAllowed("Only a teammate can give feedback on the AI's answers.")
    return actor.member_id
