"""Teammates in the thread: a reply goes to the lead, a note stays with the team, Retry sends again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.actions.common import Actor, Changed, Posted, queue, record
from core.actions.locks import lock_conversation, lock_message
from core.actions.transitions import set_ai_mode, set_status, stop_waiting
from core.errors import InvalidAction, NotFound
from core.models import AIMode, Conversation, DeliveryStatus, Direction, Message, Status, utcnow
from core.outbox import JobKind


def do_reply(
    session: Session,
    conversation_id: int,
    text: str,
    *,
    actor: Actor,
    slack_channel: str,
    slack_ts: str,
) -> Posted:
    """A teammate answered in the thread: send it to the lead; the human has taken over from the AI."""
    duplicate = _already_stored(session, slack_channel, slack_ts)
    if duplicate is not None:
        return duplicate
    conversation = lock_conversation(session, conversation_id)
    if not text.strip():
        raise InvalidAction("an empty reply cannot be sent")
    if conversation.ai_mode == AIMode.ACTIVE:
        set_ai_mode(session, conversation, AIMode.PAUSED, actor)
    message = _from_slack(conversation, Direction.OUTBOUND, text, actor, slack_channel, slack_ts)
    message.delivery_status = DeliveryStatus.QUEUED
    session.add(message)
    _answered(session, conversation, actor, message.created_at)
    session.flush()
    queue(session, JobKind.DELIVER, conversation, message)
    queue(session, JobKind.MIRROR, conversation)
    return Posted(conversation.id, message.id, duplicate=False)


def do_note(
    session: Session,
    conversation_id: int,
    text: str,
    *,
    actor: Actor,
    slack_channel: str,
    slack_ts: str,
) -> Posted:
    """An internal note: stored for the team, never sent, never shown to the AI."""
    duplicate = _already_stored(session, slack_channel, slack_ts)
    if duplicate is not None:
        return duplicate
    conversation = lock_conversation(session, conversation_id)
    message = _from_slack(conversation, Direction.NOTE, text, actor, slack_channel, slack_ts)
    session.add(message)
    session.flush()
    record(session, conversation, "note", actor, new={"message_id": message.id})
    queue(session, JobKind.MIRROR, conversation)  # marks the Slack message as a note the lead never got
    return Posted(conversation.id, message.id, duplicate=False)


def do_retry_delivery(session: Session, conversation_id: int, message_id: int, *, actor: Actor) -> Changed:
    """A teammate pressed Retry, in the conversation's thread, on a message that was not delivered."""
    message = lock_message(session, message_id)
    if message.direction != Direction.OUTBOUND or message.conversation_id != conversation_id:
        raise NotFound("That is not a message of this conversation that was sent to the lead.")
    if message.delivery_status != DeliveryStatus.FAILED:
        return Changed(message.conversation_id, changed=False)
    conversation = lock_conversation(session, message.conversation_id)
    old_error = message.delivery_error
    message.delivery_status = DeliveryStatus.QUEUED  # a new attempt, not a provider status going back
    message.delivery_error = None
    record(
        session,
        conversation,
        "retry_delivery",
        actor,
        old={"error": old_error},
        new={"message_id": message.id},
    )
    queue(session, JobKind.DELIVER, conversation, message)
    queue(session, JobKind.MIRROR, conversation)
    return Changed(conversation.id, changed=True)


def _from_slack(
    conversation: Conversation,
    direction: Direction,
    text: str,
    actor: Actor,
    slack_channel: str,
    slack_ts: str,
) -> Message:
    """A message a teammate wrote in the conversation's thread, known by its Slack ts."""
    return Message(
        conversation=conversation,
        channel=conversation.channel,
        direction=direction,
        author=actor.kind,
        member_id=actor.member_id,
        text=text,
        slack_channel=slack_channel,
        slack_ts=slack_ts,
        created_at=utcnow(),
    )


def _already_stored(session: Session, slack_channel: str, slack_ts: str) -> Posted | None:
    message = session.scalar(
        select(Message).where(Message.slack_channel == slack_channel, Message.slack_ts == slack_ts)
    )
    return None if message is None else Posted(message.conversation_id, message.id, duplicate=True)


def _answered(session: Session, conversation: Conversation, actor: Actor, at: datetime) -> None:
    conversation.unread_count = 0
    conversation.last_activity_at = at
    stop_waiting(conversation)
    if conversation.first_response_at is None:
        conversation.first_response_at = at
    set_status(session, conversation, Status.PENDING, actor)  # from closed too: we wrote, so it is live
