"""Reviewing knowledge the agent may use: a pending entry (a teammate's correction) is approved or
rejected by a teammate. Only approved entries are retrieved (ai/). Reviewing is idempotent: an entry
already reviewed stays as it was and the answer says how it was reviewed, and by whom.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.actions.common import Actor, record
from core.errors import NotAllowed, NotFound
from core.models import AIDecision, Conversation, KnowledgeEntry, KnowledgeStatus, utcnow


@dataclass(frozen=True)
class Reviewed:
    entry_id: int
    status: KnowledgeStatus  # as it is now
    changed: bool  # False: someone had already reviewed it (status says how)
    reviewed_by_id: int | None


def lock_entry(session: Session, entry_id: int) -> KnowledgeEntry:
    entry = session.get(
        KnowledgeEntry, entry_id, with_for_update={"of": KnowledgeEntry}, populate_existing=True
    )
    if entry is None:
        raise NotFound(f"knowledge entry {entry_id} does not exist")
    return entry


def entry_conversation(session: Session, entry: KnowledgeEntry) -> Conversation | None:
    """The conversation whose AI answer the entry corrects (None for an entry not made from one)."""
    if entry.decision_id is None:
        return None
    decision = session.get(AIDecision, entry.decision_id)
    return None if decision is None else session.get(Conversation, decision.conversation_id)


def do_review_knowledge(session: Session, entry_id: int, *, approve: bool, actor: Actor) -> Reviewed:
    """Approve (the agent may use it from now on) or reject a pending entry."""
    if actor.member_id is None:
        raise NotAllowed("Only a teammate can review what the AI may use.")
    entry = lock_entry(session, entry_id)
    status = KnowledgeStatus(entry.status)
    if status != KnowledgeStatus.PENDING:
        return Reviewed(entry.id, status, changed=False, reviewed_by_id=entry.reviewed_by_id)
    new = KnowledgeStatus.APPROVED if approve else KnowledgeStatus.REJECTED
    entry.status, entry.reviewed_by_id, entry.reviewed_at = new, actor.member_id, utcnow()
    conversation = entry_conversation(session, entry)
    if conversation is not None:
        record(
            session,
            conversation,
            "knowledge_review",
            actor,
            old={"entry_id": entry.id, "status": status.value},
            new={"entry_id": entry.id, "status": new.value},
        )
    return Reviewed(entry.id, new, changed=True, reviewed_by_id=actor.member_id)
