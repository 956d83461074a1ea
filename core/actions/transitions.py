"""The audited state changes several areas share: status, AI mode, assignee, and finishing a change.

Each returns whether anything changed and writes its audit event when it did. Status follows the
conversation by itself: a lead's message makes it `open` (and reopens a closed one), our reply makes it
`pending`, close makes it `closed`.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.actions.common import Actor, Changed, queue, record
from core.errors import NotFound
from core.models import AIMode, Conversation, Member, Status, utcnow
from core.outbox import JobKind


def set_status(session: Session, conversation: Conversation, status: Status, actor: Actor) -> bool:
    old = conversation.status
    if old == status:
        return False
    conversation.status = status
    conversation.closed_at = utcnow() if status == Status.CLOSED else None
    if status == Status.CLOSED:
        stop_waiting(conversation)  # nobody owes a closed conversation an answer
    record(session, conversation, "status", actor, old={"status": old.value}, new={"status": status.value})
    return True


def stop_waiting(conversation: Conversation) -> None:
    """The lead has their answer (or the conversation closed): the next wait starts afresh."""
    conversation.waiting_since = None
    conversation.sla_reminded_at = None


def set_ai_mode(session: Session, conversation: Conversation, mode: AIMode, actor: Actor) -> bool:
    old = conversation.ai_mode
    if old == mode:
        return False
    conversation.ai_mode = mode
    record(session, conversation, "ai_mode", actor, old={"ai_mode": old.value}, new={"ai_mode": mode.value})
    return True


def set_assignee(session: Session, conversation: Conversation, member_id: int | None, actor: Actor) -> bool:
    old = conversation.assignee_id
    if old == member_id:
        return False
    if member_id is not None and session.get(Member, member_id) is None:
        raise NotFound(f"member {member_id} does not exist")
    conversation.assignee_id = member_id
    record(session, conversation, "assignee", actor, old={"member_id": old}, new={"member_id": member_id})
    if member_id is not None and member_id != actor.member_id:
        queue(session, JobKind.NOTIFY_ASSIGNEE, conversation, payload={"member_id": member_id})
    return True


def finish(session: Session, conversation: Conversation, changed: bool) -> Changed:
    """End a card-visible change: bump activity and let the mirror redraw the card."""
    if changed:
        conversation.last_activity_at = utcnow()
        session.flush()
        queue(session, JobKind.MIRROR, conversation)
    return Changed(conversation.id, changed=changed)
