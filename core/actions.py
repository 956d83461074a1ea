"""Use-cases: one function per thing that happens to a conversation.

Each `do_*` runs inside the caller's transaction (`Database.run`), changes state, writes the audit
`Event` and the `Outbox` rows for the work it calls for, and returns a typed result. Nothing here talks
to a provider; the outbox carries that work out after commit.

Status follows the conversation by itself: a lead's message makes it `open` (and reopens a closed one),
our reply makes it `pending`, close makes it `closed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidAction, NotFound
from core.messages import DeliveryUpdate, Inbound, LeadProfile
from core.models import (
    AIMode,
    Author,
    Channel,
    Conversation,
    DeliveryStatus,
    Direction,
    Event,
    Lead,
    Member,
    Message,
    Outbox,
    ProcessedEvent,
    Status,
    Tag,
    utcnow,
)

MIRROR = "mirror"
DELIVER = "deliver"
AI_REPLY = "ai_reply"
NOTIFY_ASSIGNEE = "notify_assignee"


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


# --- loading -----------------------------------------------------------------------------------------


def lock_conversation(session: Session, conversation_id: int) -> Conversation:
    """Load a conversation for change, holding its row lock on PostgreSQL until commit.

    On SQLite the whole transaction already holds the database's write lock (see core.db).
    """
    conversation = session.get(
        Conversation, conversation_id, with_for_update={"of": Conversation}, populate_existing=True
    )
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} does not exist")
    return conversation


def lock_message(session: Session, message_id: int) -> Message:
    message = session.get(Message, message_id, with_for_update={"of": Message}, populate_existing=True)
    if message is None:
        raise NotFound(f"message {message_id} does not exist")
    return message


def conversation_for_thread(session: Session, slack_channel: str, thread_ts: str) -> Conversation | None:
    return session.scalar(
        select(Conversation).where(
            Conversation.slack_channel == slack_channel, Conversation.slack_thread_ts == thread_ts
        )
    )


def sent_message_at(session: Session, slack_channel: str, slack_ts: str) -> bool:
    """Whether the Slack message at this ts was sent to a lead."""
    direction = session.scalar(
        select(Message.direction).where(Message.slack_channel == slack_channel, Message.slack_ts == slack_ts)
    )
    return direction == Direction.OUTBOUND


def claim_delivery_key(session: Session, source: str, key: str) -> bool:
    """Record that a provider delivery (Slack event id, webhook id) is being acted on.

    Returns False if it was recorded before: a retry that must change nothing. The row is inserted in
    the caller's transaction, so a retry racing the first delivery fails on the primary key and the
    use-case runs again, finding it.
    """
    if session.get(ProcessedEvent, (source, key)) is not None:
        return False
    session.add(ProcessedEvent(source=source, key=key))
    session.flush()
    return True


# --- inbound -----------------------------------------------------------------------------------------


def do_receive(session: Session, inbound: Inbound, *, ai_enabled: bool) -> Received:
    """A lead wrote to us: store it once, open the conversation, queue the mirror (and the AI)."""
    existing = session.scalar(
        select(Message).where(
            Message.channel == inbound.channel,
            Message.provider_message_id == inbound.provider_message_id,
        )
    )
    if existing is not None:
        return Received(existing.conversation_id, existing.id, duplicate=True)

    lead = _resolve_lead(session, inbound.channel, inbound.sender)
    conversation = _find_or_start_conversation(session, lead, inbound, ai_enabled=ai_enabled)
    now = utcnow()
    message = Message(
        conversation=conversation,
        channel=inbound.channel,
        direction=Direction.INBOUND,
        author=Author.LEAD,
        kind=inbound.kind,
        text=inbound.text,
        html=inbound.html,
        attachments=inbound.attachments,
        reply_to_provider_id=inbound.reply_to_provider_id,
        provider_message_id=inbound.provider_message_id,
        provider_sent_at=inbound.sent_at,
        created_at=now,
    )
    session.add(message)
    if conversation.status != Status.OPEN:
        _set_status(session, conversation, Status.OPEN, LEAD)
    if inbound.kind != "reaction":  # a 👍 is not something waiting to be answered
        conversation.unread_count += 1
        conversation.last_inbound_at = now
    conversation.last_activity_at = now
    session.flush()
    _queue(session, MIRROR, conversation)
    if conversation.ai_mode == AIMode.ACTIVE and inbound.kind != "reaction":
        _queue(session, AI_REPLY, conversation, message)
    return Received(conversation.id, message.id, duplicate=False)


def do_record_delivery(session: Session, update: DeliveryUpdate) -> bool:
    """The provider reports on a message we sent. A status never moves backwards."""
    message = session.scalar(
        select(Message).where(
            Message.channel == update.channel,
            Message.provider_message_id == update.provider_message_id,
        )
    )
    if message is None or message.direction != Direction.OUTBOUND:
        return False
    if not advance_delivery(message, update.status, update.error):
        return False
    _queue(session, MIRROR, message.conversation)
    return True


def advance_delivery(message: Message, status: DeliveryStatus, error: str | None = None) -> bool:
    current = message.delivery_status
    if current is not None and status.rank <= current.rank and status != DeliveryStatus.FAILED:
        return False
    if current == status:
        return False
    if status == DeliveryStatus.FAILED and current is not None and current.rank > DeliveryStatus.SENT.rank:
        return False  # it was delivered or read; a late failure report does not undo that
    message.delivery_status = status
    message.delivery_error = error if status == DeliveryStatus.FAILED else None
    return True


def _resolve_lead(session: Session, channel: Channel, profile: LeadProfile) -> Lead:
    key = {
        Channel.WHATSAPP: Lead.whatsapp_id,
        Channel.LINKEDIN: Lead.linkedin_id,
        Channel.EMAIL: Lead.email,
    }[channel]
    lead = session.scalar(select(Lead).where(key == profile.provider_id))
    if lead is None and profile.email:
        lead = session.scalar(select(Lead).where(Lead.email == profile.email))
    if lead is None:
        lead = Lead()
        session.add(lead)
    setattr(lead, key.key, profile.provider_id)
    # Fill what we did not know; never overwrite what a teammate may have corrected.
    for field in ("name", "email", "phone", "company", "title", "profile_url", "avatar_url"):
        value = getattr(profile, field)
        if value and not getattr(lead, field):
            setattr(lead, field, value)
    session.flush()  # a concurrent first message from the same lead fails here and the use-case retries
    return lead


def _find_or_start_conversation(
    session: Session, lead: Lead, inbound: Inbound, *, ai_enabled: bool
) -> Conversation:
    conversation = session.scalar(
        select(Conversation)
        .where(
            Conversation.channel == inbound.channel,
            Conversation.channel_account == inbound.channel_account,
            Conversation.provider_thread_id == inbound.provider_thread_id,
        )
        .with_for_update(of=Conversation)
    )
    if conversation is not None:
        return conversation
    conversation = Conversation(
        lead=lead,
        channel=inbound.channel,
        channel_account=inbound.channel_account,
        provider_thread_id=inbound.provider_thread_id,
        status=Status.OPEN,
        ai_mode=AIMode.ACTIVE if ai_enabled else AIMode.MANUAL,
        campaign_id=lead.campaign_id,
    )
    session.add(conversation)
    session.flush()
    _record(session, conversation, "created", LEAD, new={"channel": inbound.channel.value})
    return conversation


# --- teammates in the thread -------------------------------------------------------------------------


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
        _set_ai_mode(session, conversation, AIMode.PAUSED, actor)
    now = utcnow()
    message = Message(
        conversation=conversation,
        channel=conversation.channel,
        direction=Direction.OUTBOUND,
        author=actor.kind,
        member_id=actor.member_id,
        text=text,
        slack_channel=slack_channel,
        slack_ts=slack_ts,
        delivery_status=DeliveryStatus.QUEUED,
        created_at=now,
    )
    session.add(message)
    _answered(session, conversation, actor, now)
    session.flush()
    _queue(session, DELIVER, conversation, message)
    _queue(session, MIRROR, conversation)
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
    message = Message(
        conversation=conversation,
        channel=conversation.channel,
        direction=Direction.NOTE,
        author=actor.kind,
        member_id=actor.member_id,
        text=text,
        slack_channel=slack_channel,
        slack_ts=slack_ts,
    )
    session.add(message)
    session.flush()
    _record(session, conversation, "note", actor, new={"message_id": message.id})
    _queue(session, MIRROR, conversation)  # marks the Slack message as a note the lead never got
    return Posted(conversation.id, message.id, duplicate=False)


def do_retry_delivery(session: Session, message_id: int, *, actor: Actor) -> Changed:
    """A teammate pressed Retry on a message that was not delivered: send it again."""
    message = lock_message(session, message_id)
    if message.direction != Direction.OUTBOUND:
        raise NotFound(f"message {message_id} is not a message we sent")
    if message.delivery_status != DeliveryStatus.FAILED:
        return Changed(message.conversation_id, changed=False)
    conversation = lock_conversation(session, message.conversation_id)
    old_error = message.delivery_error
    message.delivery_status = DeliveryStatus.QUEUED  # a new attempt, not a provider status going back
    message.delivery_error = None
    _record(
        session,
        conversation,
        "retry_delivery",
        actor,
        old={"error": old_error},
        new={"message_id": message.id},
    )
    _queue(session, DELIVER, conversation, message)
    _queue(session, MIRROR, conversation)
    return Changed(conversation.id, changed=True)


def _already_stored(session: Session, slack_channel: str, slack_ts: str) -> Posted | None:
    message = session.scalar(
        select(Message).where(Message.slack_channel == slack_channel, Message.slack_ts == slack_ts)
    )
    return None if message is None else Posted(message.conversation_id, message.id, duplicate=True)


def _answered(session: Session, conversation: Conversation, actor: Actor, at: datetime) -> None:
    conversation.unread_count = 0
    conversation.last_activity_at = at
    if conversation.first_response_at is None:
        conversation.first_response_at = at
    _set_status(session, conversation, Status.PENDING, actor)  # from closed too: we wrote, so it is live


# --- teammates ---------------------------------------------------------------------------------------


def find_member(session: Session, slack_user_id: str) -> Member | None:
    return session.scalar(select(Member).where(Member.slack_user_id == slack_user_id))


def do_register_member(session: Session, slack_user_id: str, *, name: str, email: str | None) -> Member:
    """Add a teammate the first time they act in Slack (or refresh their name and email)."""
    member = find_member(session, slack_user_id)
    if member is None:
        member = Member(slack_user_id=slack_user_id, name=name, email=email)
        session.add(member)
    else:
        member.name, member.email = name, email or member.email
    session.flush()  # the same person's two first clicks at once: one insert wins, the other retries
    return member


# --- card buttons ------------------------------------------------------------------------------------


def do_take_over(session: Session, conversation_id: int, *, actor: Actor) -> Changed:
    """A teammate handles it from here: the AI pauses and, if nobody has it, it is theirs."""
    conversation = lock_conversation(session, conversation_id)
    changed = False
    if conversation.ai_mode == AIMode.ACTIVE:
        changed |= _set_ai_mode(session, conversation, AIMode.PAUSED, actor)
    if conversation.assignee_id is None and actor.member_id is not None:
        changed |= _set_assignee(session, conversation, actor.member_id, actor)
    return _finish(session, conversation, changed)


def do_resume_ai(session: Session, conversation_id: int, *, actor: Actor, ai_enabled: bool) -> Changed:
    if not ai_enabled:
        raise InvalidAction("The AI agent is off (OPENAI_API_KEY is not set), so it cannot resume.")
    conversation = lock_conversation(session, conversation_id)
    if conversation.status == Status.CLOSED:
        raise InvalidAction("Reopen the conversation before handing it back to the AI.")
    changed = _set_ai_mode(session, conversation, AIMode.ACTIVE, actor)
    if changed and conversation.status == Status.OPEN:
        # The lead is waiting on an answer: let the AI pick up from the newest message.
        newest = session.scalar(
            select(Message)
            .where(Message.conversation_id == conversation.id, Message.direction == Direction.INBOUND)
            .order_by(Message.id.desc())
            .limit(1)
        )
        if newest is not None:
            _queue(session, AI_REPLY, conversation, newest)
    return _finish(session, conversation, changed)


def do_set_manual(session: Session, conversation_id: int, *, actor: Actor) -> Changed:
    conversation = lock_conversation(session, conversation_id)
    return _finish(session, conversation, _set_ai_mode(session, conversation, AIMode.MANUAL, actor))


def do_assign(session: Session, conversation_id: int, assignee_id: int | None, *, actor: Actor) -> Changed:
    conversation = lock_conversation(session, conversation_id)
    changed = _set_assignee(session, conversation, assignee_id, actor)
    return _finish(session, conversation, changed)


def do_set_tags(session: Session, conversation_id: int, names: list[str], *, actor: Actor) -> Changed:
    """Make the conversation's tags exactly `names`; unknown names become new tags."""
    conversation = lock_conversation(session, conversation_id)
    wanted = sorted({normalize_tag(name) for name in names if normalize_tag(name)})
    old = sorted(tag.name for tag in conversation.tags)
    if wanted == old:
        return Changed(conversation.id, changed=False)
    conversation.tags = [_get_or_create_tag(session, name) for name in wanted]
    _record(session, conversation, "tags", actor, old={"tags": old}, new={"tags": wanted})
    return _finish(session, conversation, True)


def do_add_tag(session: Session, conversation_id: int, name: str, *, actor: Actor) -> Changed:
    conversation = lock_conversation(session, conversation_id)
    names = [tag.name for tag in conversation.tags]
    return do_set_tags(session, conversation_id, [*names, name], actor=actor)


def do_remove_tag(session: Session, conversation_id: int, name: str, *, actor: Actor) -> Changed:
    conversation = lock_conversation(session, conversation_id)
    names = [tag.name for tag in conversation.tags if tag.name != normalize_tag(name)]
    return do_set_tags(session, conversation_id, names, actor=actor)


def do_close(session: Session, conversation_id: int, *, actor: Actor) -> Changed:
    conversation = lock_conversation(session, conversation_id)
    changed = _set_status(session, conversation, Status.CLOSED, actor)
    return _finish(session, conversation, changed)


def do_reopen(session: Session, conversation_id: int, *, actor: Actor) -> Changed:
    """Reopen by hand: it needs attention again."""
    conversation = lock_conversation(session, conversation_id)
    if conversation.status != Status.CLOSED:
        return Changed(conversation.id, changed=False)
    changed = _set_status(session, conversation, Status.OPEN, actor)
    return _finish(session, conversation, changed)


def normalize_tag(name: str) -> str:
    return " ".join(name.strip().lower().split())[:64]


def _get_or_create_tag(session: Session, name: str) -> Tag:
    tag = session.scalar(select(Tag).where(Tag.name == name))
    if tag is None:
        tag = Tag(name=name)
        session.add(tag)
        session.flush()  # two teammates creating the same new tag at once: one retries and finds it
    return tag


# --- state changes, each with its audit event --------------------------------------------------------


def _set_status(session: Session, conversation: Conversation, status: Status, actor: Actor) -> bool:
    old = conversation.status
    if old == status:
        return False
    conversation.status = status
    conversation.closed_at = utcnow() if status == Status.CLOSED else None
    _record(session, conversation, "status", actor, old={"status": old.value}, new={"status": status.value})
    return True


def _set_ai_mode(session: Session, conversation: Conversation, mode: AIMode, actor: Actor) -> bool:
    old = conversation.ai_mode
    if old == mode:
        return False
    conversation.ai_mode = mode
    _record(session, conversation, "ai_mode", actor, old={"ai_mode": old.value}, new={"ai_mode": mode.value})
    return True


def _set_assignee(session: Session, conversation: Conversation, member_id: int | None, actor: Actor) -> bool:
    old = conversation.assignee_id
    if old == member_id:
        return False
    if member_id is not None and session.get(Member, member_id) is None:
        raise NotFound(f"member {member_id} does not exist")
    conversation.assignee_id = member_id
    _record(session, conversation, "assignee", actor, old={"member_id": old}, new={"member_id": member_id})
    if member_id is not None and member_id != actor.member_id:
        _queue(session, NOTIFY_ASSIGNEE, conversation, payload={"member_id": member_id})
    return True


def _finish(session: Session, conversation: Conversation, changed: bool) -> Changed:
    if changed:
        conversation.last_activity_at = utcnow()
        session.flush()
        _queue(session, MIRROR, conversation)
    return Changed(conversation.id, changed=changed)


def _record(
    session: Session,
    conversation: Conversation,
    kind: str,
    actor: Actor,
    *,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
) -> None:
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


def _queue(
    session: Session,
    kind: str,
    conversation: Conversation,
    message: Message | None = None,
    *,
    payload: dict[str, Any] | None = None,
) -> None:
    session.add(
        Outbox(
            kind=kind,
            conversation_id=conversation.id,
            message_id=message.id if message is not None else None,
            payload=payload or {},
        )
    )
