"""A lead writes to us; a provider reports on a message we sent."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.actions.common import LEAD, Received, queue, record
from core.actions.transitions import set_status
from core.messages import DeliveryUpdate, Inbound, LeadProfile
from core.models import (
    AIMode,
    Author,
    Channel,
    Conversation,
    DeliveryStatus,
    Direction,
    Lead,
    Message,
    Status,
    utcnow,
)
from core.outbox import JobKind


def do_receive(session: Session, inbound: Inbound, *, ai_available: bool) -> Received:
    """A lead wrote to us: store it once, open the conversation, queue the mirror.

    `ai_available` says whether an AI agent runs on this server; without one, new conversations start
    manual rather than promising an answer nobody will give.
    """
    existing = session.scalar(
        select(Message).where(
            Message.channel == inbound.channel,
            Message.provider_message_id == inbound.provider_message_id,
        )
    )
    if existing is not None:
        return Received(existing.conversation_id, existing.id, duplicate=True)

    lead = _resolve_lead(session, inbound.channel, inbound.sender)
    conversation = _find_or_start_conversation(session, lead, inbound, ai_available=ai_available)
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
        set_status(session, conversation, Status.OPEN, LEAD)
    if inbound.kind != "reaction":  # a 👍 is not something waiting to be answered
        conversation.unread_count += 1
        conversation.last_inbound_at = now
    conversation.last_activity_at = now
    session.flush()
    queue(session, JobKind.MIRROR, conversation)
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
    queue(session, JobKind.MIRROR, message.conversation)
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
    session: Session, lead: Lead, inbound: Inbound, *, ai_available: bool
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
        ai_mode=AIMode.ACTIVE if ai_available else AIMode.MANUAL,
        campaign_id=lead.campaign_id,
    )
    session.add(conversation)
    session.flush()
    record(session, conversation, "created", LEAD, new={"channel": inbound.channel.value})
    return conversation
