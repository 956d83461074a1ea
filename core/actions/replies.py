"""Teammates in the thread: a reply goes to the lead, a note stays with the team, Retry sends again."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.actions.common import Actor, Changed, Posted, queue, record
from core.actions.locks import claim_delivery_key, lock_conversation, lock_message
from core.actions.transitions import set_ai_mode, set_status, stop_waiting
from core.errors import InvalidAction, NotFound
from core.models import AIMode, Conversation, DeliveryStatus, Direction, Member, Message, Status, utcnow
from core.outbox import JobKind
from core.ports import Attachment, Template
from core.variables import fill, values_for

# A reply still waiting to go out (or that failed): an edit changes what the lead gets, a delete stops it.
_NOT_SENT = (DeliveryStatus.QUEUED, DeliveryStatus.FAILED)
DELETED_BEFORE_SENT = "Deleted in Slack before it was sent; the lead did not get it."
TEMPLATE = "template"  # message.kind of a channel's pre-approved message (message.template says which)


class Edited(enum.Enum):
    UPDATED = "updated"  # the stored message follows Slack
    WITHDRAWN = "withdrawn"  # a reply deleted before it went out: it never will
    TOO_LATE = "too_late"  # the lead already has the original
    UNKNOWN = "unknown"  # not a message Threadline keeps


def do_reply(
    session: Session,
    conversation_id: int,
    text: str,
    *,
    actor: Actor,
    slack_channel: str,
    slack_ts: str,
    attachments: Sequence[Attachment] = (),
) -> Posted:
    """A teammate answered in the thread: send it to the lead; the human has taken over from the AI.
    `attachments`: files they shared with it (Slack file ids; the deliverer fetches the bytes)."""
    duplicate = _already_stored(session, slack_channel, slack_ts)
    if duplicate is not None:
        return duplicate
    conversation = lock_conversation(session, conversation_id)
    if not text.strip() and not attachments:
        raise InvalidAction("an empty reply cannot be sent")
    text = fill_variables(session, conversation, text, actor)
    if conversation.ai_mode == AIMode.ACTIVE:
        set_ai_mode(session, conversation, AIMode.PAUSED, actor)
    message = _from_slack(conversation, Direction.OUTBOUND, text, actor, slack_channel, slack_ts)
    message.delivery_status = DeliveryStatus.QUEUED
    message.attachments = [dict(attachment) for attachment in attachments]
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


def do_edit(
    session: Session, slack_channel: str, slack_ts: str, text: str, *, actor: Actor, note: bool
) -> Edited:
    """A teammate edited their thread message. Before it went out, the lead gets the edited text;
    after, nothing can change what the lead has, and the caller says so. `note`: the edited text reads
    as a note; a reply not yet sent then becomes one, and a note never becomes a reply (when in doubt,
    it is a note)."""
    message = _stored_at(session, slack_channel, slack_ts)
    if message is None:
        return Edited.UNKNOWN
    if message.direction == Direction.NOTE:
        message.text, message.edited_at = text, utcnow()  # the team's record follows the edit
        return Edited.UPDATED
    if message.direction != Direction.OUTBOUND or message.deleted_at is not None:
        return Edited.UNKNOWN
    if message.delivery_status not in _NOT_SENT:
        return Edited.TOO_LATE
    conversation = lock_conversation(session, message.conversation_id)
    if note:
        message.direction, message.delivery_status, message.delivery_error = Direction.NOTE, None, None
        message.text, message.edited_at = text, utcnow()
        record(session, conversation, "note", actor, new={"message_id": message.id})
        queue(session, JobKind.MIRROR, conversation)  # the lock that marks a note
        return Edited.UPDATED
    if not text.strip():
        raise InvalidAction("an empty reply cannot be sent")
    old = message.text
    message.text = fill_variables(session, conversation, text, actor)
    message.edited_at = utcnow()
    message.parts_sent = 0  # parts of an earlier version are not parts of this one
    record(session, conversation, "edited", actor, old={"text": old}, new={"message_id": message.id})
    return Edited.UPDATED


def do_delete(session: Session, slack_channel: str, slack_ts: str, *, actor: Actor) -> Edited:
    """A teammate deleted their thread message. If it has not gone out, it never will (WITHDRAWN); a
    deleted note is UPDATED."""
    message = _stored_at(session, slack_channel, slack_ts)
    if message is None or message.deleted_at is not None:
        return Edited.UNKNOWN
    if message.direction == Direction.OUTBOUND and message.delivery_status not in _NOT_SENT:
        message.deleted_at = utcnow()
        return Edited.TOO_LATE
    conversation = lock_conversation(session, message.conversation_id)
    message.deleted_at = utcnow()
    record(session, conversation, "deleted", actor, new={"message_id": message.id})
    if message.direction != Direction.OUTBOUND:
        return Edited.UPDATED
    message.delivery_status = DeliveryStatus.FAILED
    message.delivery_error = DELETED_BEFORE_SENT
    return Edited.WITHDRAWN


def fill_variables(session: Session, conversation: Conversation, text: str, actor: Actor) -> str:
    """The reply as the lead will read it; UnfilledVariable names a variable that cannot be filled."""
    member = session.get(Member, actor.member_id) if actor.member_id is not None else None
    campaign = conversation.campaign or conversation.lead.campaign
    return fill(text, values_for(conversation.lead, campaign.name if campaign else None, member))


def do_retry_delivery(session: Session, conversation_id: int, message_id: int, *, actor: Actor) -> Changed:
    """A teammate pressed Retry, in the conversation's thread, on a message that was not delivered."""
    message = lock_message(session, message_id)
    if message.direction != Direction.OUTBOUND or message.conversation_id != conversation_id:
        raise NotFound("That is not a message of this conversation that was sent to the lead.")
    if message.deleted_at is not None:
        raise InvalidAction("It was deleted in Slack, so there is nothing to send.")
    if message.delivery_status != DeliveryStatus.FAILED:
        return Changed(message.conversation_id, changed=False)
    conversation = lock_conversation(session, message.conversation_id)
    old_error = message.delivery_error
    message.delivery_status = DeliveryStatus.QUEUED  # a new attempt, not a provider status going back
    message.delivery_error = message.delivery_error_code = None
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


def do_send_template(
    session: Session,
    conversation_id: int,
    template: Template,
    *,
    actor: Actor,
    offered: Sequence[Template],
    instead_of: int,
) -> Posted:
    """A teammate picked one of the channel's templates on the notice that its reply window is closed
    (the message `instead_of` was not sent): the template becomes their message to the lead, sent like
    any reply and shown in the thread as theirs. A second click on the same button sends nothing more.
    `offered`: the templates the channel offers now (a stale button names one no longer configured)."""
    if template not in offered:
        raise InvalidAction(
            f"The template {template.name} ({template.language}) is not offered any more: pick another."
        )
    failed = lock_message(session, instead_of)
    if failed.conversation_id != conversation_id or failed.direction != Direction.OUTBOUND:
        raise NotFound("That is not a message of this conversation that was sent to the lead.")
    conversation = lock_conversation(session, conversation_id)
    click = f"template:{instead_of}:{template.name}:{template.language}"
    if not claim_delivery_key(session, "slack", click):
        sent = session.scalar(
            select(Message.id)
            .where(Message.conversation_id == conversation_id, Message.kind == TEMPLATE)
            .order_by(Message.id.desc())
        )
        return Posted(conversation_id, sent or instead_of, duplicate=True)
    if conversation.ai_mode == AIMode.ACTIVE:
        set_ai_mode(session, conversation, AIMode.PAUSED, actor)
    message = Message(
        conversation=conversation,
        channel=conversation.channel,
        direction=Direction.OUTBOUND,
        author=actor.kind,
        member_id=actor.member_id,
        kind=TEMPLATE,
        text=f"[template {template.name} ({template.language})]",
        template={"name": template.name, "language": template.language},
        delivery_status=DeliveryStatus.QUEUED,
        created_at=utcnow(),
    )
    session.add(message)
    _answered(session, conversation, actor, message.created_at)
    session.flush()
    record(
        session,
        conversation,
        "template_sent",
        actor,
        new={"message_id": message.id, "template": template.name, "language": template.language},
    )
    queue(session, JobKind.DELIVER, conversation, message)
    queue(session, JobKind.MIRROR, conversation)  # posts it into the thread as the teammate's
    return Posted(conversation.id, message.id, duplicate=False)


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


def _stored_at(session: Session, slack_channel: str, slack_ts: str) -> Message | None:
    message_id = session.scalar(
        select(Message.id).where(Message.slack_channel == slack_channel, Message.slack_ts == slack_ts)
    )
    return None if message_id is None else lock_message(session, message_id)


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
