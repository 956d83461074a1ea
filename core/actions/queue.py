"""The unassigned queue (App Home): Take it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.actions.common import Actor
from core.actions.conversation import do_take_over
from core.actions.locks import lock_conversation
from core.models import Status


@dataclass(frozen=True)
class Taken:
    conversation_id: int
    taken: bool  # it is the actor's now
    taken_by: str | None = None  # not taken: the Slack user id of whoever was faster
    closed: bool = False  # not taken: it was closed meanwhile


def do_take_from_queue(session: Session, conversation_id: int, *, actor: Actor) -> Taken:
    """Take an unassigned conversation (as the card's Take over does) — unless, by the time the click
    arrives, someone else has it or it was closed: then nothing changes, and the result says why."""
    conversation = lock_conversation(session, conversation_id)
    if conversation.status == Status.CLOSED:
        return Taken(conversation.id, taken=False, closed=True)
    assignee = conversation.assignee
    if assignee is not None and assignee.id != actor.member_id:
        return Taken(conversation.id, taken=False, taken_by=assignee.slack_user_id)
    do_take_over(session, conversation.id, actor=actor)
    return Taken(conversation.id, taken=True)
