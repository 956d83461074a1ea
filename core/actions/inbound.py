"""A lead writes to us; a provider reports on a message we sent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from core.actions.common import LEAD, SYSTEM, Received, campaign_named, queue, record
from core.actions.satisfaction import awaiting_rating, read_rating, record_rating
from core.actions.transitions import set_ai_mode, set_status, stop_waiting
from core.errors import NEEDS_TEMPLATE, UNKNOWN_OUTCOME_CODE, Deferred
from core.identity import EMAIL, PHONE, normal_email, normal_phone
from core.models import (
    AIMode,
    Author,
    Campaign,
    Conversation,
    DeliveryStatus,
    Direction,
    EarlyStatus,
    Lead,
    LeadIdentity,
    Message,
    Outbox,
    OutboxStatus,
    Status,
    utcnow,
)
from core.outbox import JobKind
from core.ports import DeliveryUpdate, Inbound, LeadProfile
from core.text import clean, fit, fit_key


def _length(column: Any) -> int:
    return int(column.type.length)


# The column lengths outside values are fitted to, read from the schema itself.
_ID, _KIND = _length(Message.provider_message_id), _length(Message.kind)
_THREAD, _ACCOUNT = _length(Conversation.provider_thread_id), _length(Conversation.channel_account)
_CAMPAIGN = _length(Campaign.name)
_SUBJECT = _length(Message.subject)
_NAME, _EMAIL, _PHONE, _URL = (
    _length(c) for c in (Lead.name, LeadIdentity.value, Lead.phone, Lead.profile_url)
)
# How long a message our own account wrote waits while one of our sends in its conversation is in
# flight: it may be that send's echo, which the send's receipt will name (DESIGN §5, echoes).
ECHO_WAIT_SECONDS = 5.0


def do_receive(session: Session, inbound: Inbound, *, ai_available: bool) -> Received:
    """A lead wrote to us: store it once, open the conversation, queue the mirror.

    `ai_available` says whether an AI agent runs on this server; without one, new conversations start
    manual rather than promising an answer nobody will give. Outside values that do not fit a column
    are cut with a mark (core.text), never a reason to lose the message.

    A message our own account wrote on the provider's side (`Inbound.from_us`) is stored as our
    outbound message, already sent: it answers the lead (ends the wait, pauses an active AI) and is
    never sent again. While a send of ours in the conversation has no receipt yet, such a message may
    be that send's echo: `Deferred` says to bring it back once the receipt is recorded, when it is
    known by its provider id and dropped as a duplicate.
    """
    return do_receive_many(session, [inbound], ai_available=ai_available)[0]


def do_receive_many(session: Session, inbounds: Sequence[Inbound], *, ai_available: bool) -> list[Received]:
    """Several messages a lead sent in one conversation (a webhook carrying a backlog): as `do_receive`
    for each, with the lead, the conversation and the mirror dealt with once. One Received each."""
    first = inbounds[0]
    assert all(thread_of(i) == thread_of(first) for i in inbounds), "one conversation's messages"
    ids = [fit_key(inbound.provider_message_id, _ID) for inbound in inbounds]
    known = {
        message.provider_message_id: message
        for message in session.scalars(
            select(Message).where(Message.channel == first.channel, Message.provider_message_id.in_(set(ids)))
        )
    }
    fresh = [(inbound, key) for inbound, key in zip(inbounds, ids, strict=True) if key not in known]
    created: set[str] = set()
    if fresh:
        conversation = _conversation_of(session, [inbound for inbound, _key in fresh], ai_available)
        now = utcnow()
        needs_answer = False
        said: list[Message] = []  # what the assignee is told about: not reactions, not ratings
        for inbound, key in fresh:
            if key in created:  # the same message twice in one delivery
                continue
            created.add(key)
            if inbound.from_us and (lost := _reply_in_doubt(session, conversation, inbound)) is not None:
                # The echo of our own send whose answer never came: that reply did reach the lead.
                lost.provider_message_id, lost.delivery_status = key, DeliveryStatus.SENT
                lost.delivery_error = lost.delivery_error_code = None
                known[key] = lost
                continue
            known[key] = _new_message(conversation, inbound, key, now)
            session.add(known[key])
            if inbound.from_us:  # we answered, from the provider's own app
                _answered_on_provider(session, conversation, now)
                needs_answer = False
                continue
            # Whatever the lead sent, even a 👍, opens their channel's reply window again (WhatsApp's 24 h).
            conversation.last_inbound_at = now
            if inbound.kind == "reaction":  # a 👍 is not something waiting to be answered
                continue
            if inbound.automatic:  # an out-of-office reply: shown, but the lead has not answered
                continue
            score = read_rating(inbound.text) if awaiting_rating(conversation) else None
            if score is not None:  # the answer to our rating question: it does not reopen
                record_rating(session, conversation, score, LEAD)
                continue
            needs_answer = True
            said.append(known[key])
            conversation.unread_count += 1
            conversation.waiting_since = conversation.waiting_since or now
        if needs_answer and conversation.status != Status.OPEN:
            set_status(session, conversation, Status.OPEN, LEAD)
        conversation.last_activity_at = now
        session.flush()
        queue(session, JobKind.MIRROR, conversation)
        _tell_assignee(session, conversation, said)
        if needs_answer and ai_available and conversation.ai_mode == AIMode.ACTIVE and said:
            # The AI's turn answers the newest; an earlier turn still queued finds it is not and skips.
            queue(session, JobKind.AI_REPLY, conversation, said[-1])
    received, reported = [], set()
    for key in ids:
        message = known[key]
        received.append(
            Received(message.conversation_id, message.id, duplicate=key not in created or key in reported)
        )
        reported.add(key)
    return received


def _tell_assignee(session: Session, conversation: Conversation, said: list[Message]) -> None:
    """One DM to the assignee for the whole batch (bot.notify), unless they turned these off.

    A DM still waiting to go out (Slack's pace held it back) takes these messages too, rather than a
    second DM following it; one a worker is taking (row locked) or took is left alone.
    """
    assignee = conversation.assignee
    if not said or assignee is None or not assignee.notify_on_message:
        return
    waiting = session.scalar(
        select(Outbox)
        .where(
            Outbox.kind == JobKind.NOTIFY_MESSAGE,
            Outbox.conversation_id == conversation.id,
            Outbox.status == OutboxStatus.PENDING,
        )
        .order_by(Outbox.id.desc())
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if waiting is not None and waiting.payload.get("member_id") == assignee.id:
        count = waiting.payload.get("count")
        waiting.payload = {**waiting.payload, "count": (count if isinstance(count, int) else 1) + len(said)}
        waiting.message_id = said[-1].id
        return
    payload = {"member_id": assignee.id, "count": len(said)}
    queue(session, JobKind.NOTIFY_MESSAGE, conversation, said[-1], payload=payload)


def thread_of(inbound: Inbound) -> tuple[str, str, str]:
    """The conversation a message belongs to: channel, our account, the lead's thread there."""
    return (inbound.channel, inbound.channel_account, inbound.provider_thread_id)


def _conversation_of(session: Session, fresh: list[Inbound], ai_available: bool) -> Conversation:
    """The conversation new messages belong to, locked; messages we wrote wait for our sends in flight."""
    first = fresh[0]
    conversation = None
    if all(inbound.from_us for inbound in fresh):
        # Only we wrote: the lead's details come from their own messages, unless this one starts it all.
        conversation = _find_conversation(session, first)
    if conversation is None:
        profile = next((inbound.sender for inbound in fresh if not inbound.from_us), first.sender)
        lead = _resolve_lead(session, first.channel, profile)
        conversation = _find_or_start_conversation(session, lead, first, ai_available=ai_available)
    if any(inbound.from_us for inbound in fresh) and _send_in_flight(session, conversation):
        raise Deferred(ECHO_WAIT_SECONDS, "a message our account wrote may be the echo of a send in flight")
    return conversation


def _send_in_flight(session: Session, conversation: Conversation) -> bool:
    return (
        session.scalar(
            select(Message.id)
            .where(
                Message.conversation_id == conversation.id,
                Message.direction == Direction.OUTBOUND,
                Message.delivery_status == DeliveryStatus.SENDING,
            )
            .limit(1)
        )
        is not None
    )


def _reply_in_doubt(session: Session, conversation: Conversation, inbound: Inbound) -> Message | None:
    """Our reply with this text whose send may or may not have reached the lead (its answer was lost),
    which a provider that reports our own sends back (LinkedIn) can settle."""
    text = clean(inbound.text)
    if not text.strip():
        return None
    return session.scalars(
        select(Message)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.OUTBOUND,
            Message.delivery_status == DeliveryStatus.FAILED,
            Message.delivery_error_code == UNKNOWN_OUTCOME_CODE,
            Message.provider_message_id.is_(None),
            Message.text == text,
        )
        .order_by(Message.id)
        .limit(1)
    ).first()


def _answered_on_provider(session: Session, conversation: Conversation, at: datetime) -> None:
    """One of us answered the lead from the provider's own app: as a reply in the thread would."""
    conversation.unread_count = 0
    conversation.last_activity_at = at
    stop_waiting(conversation)
    if conversation.first_response_at is None:
        conversation.first_response_at = at
    if conversation.ai_mode == AIMode.ACTIVE:  # a person took over
        set_ai_mode(session, conversation, AIMode.PAUSED, SYSTEM)
    if conversation.status != Status.PENDING:
        set_status(session, conversation, Status.PENDING, SYSTEM)


def _new_message(conversation: Conversation, inbound: Inbound, key: str, now: datetime) -> Message:
    ours = inbound.from_us
    return Message(
        conversation=conversation,
        channel=inbound.channel,
        direction=Direction.OUTBOUND if ours else Direction.INBOUND,
        author=Author.MEMBER if ours else Author.LEAD,  # no member: written outside Slack
        delivery_status=DeliveryStatus.SENT if ours else None,
        kind=fit(inbound.kind, _KIND),
        text=clean(inbound.text),
        html=None if inbound.html is None else clean(inbound.html),
        subject=fit(inbound.subject, _SUBJECT),
        full_text=None if inbound.full_text is None else clean(inbound.full_text),
        attachments=inbound.attachments,
        reply_to_provider_id=None
        if inbound.reply_to_provider_id is None
        else fit_key(inbound.reply_to_provider_id, _ID),
        provider_message_id=key,
        provider_sent_at=inbound.sent_at,
        created_at=now,
    )


def do_record_delivery(session: Session, update: DeliveryUpdate) -> bool:
    """The provider reports on a message we sent. A status never moves backwards.

    A status can beat our own record of the send (the webhook arrives before the sending worker
    commits the provider's id): it is kept aside and applied when the send is recorded.
    """
    provider_message_id = fit_key(update.provider_message_id, _ID)
    message = session.scalar(
        select(Message).where(
            Message.channel == update.channel,
            Message.provider_message_id == provider_message_id,
        )
    )
    if message is None or message.delivery_status in {DeliveryStatus.QUEUED, DeliveryStatus.SENDING}:
        # Not recorded as sent yet (or being sent again): kept, and applied when the send is recorded.
        _keep_early(session, update, provider_message_id)
        return False
    if message.direction != Direction.OUTBOUND:
        return False
    code = NEEDS_TEMPLATE if update.needs_template else None
    if not advance_delivery(message, update.status, update.error, code):
        return False
    queue(session, JobKind.MIRROR, message.conversation)
    return True


def apply_early_statuses(session: Session, message: Message) -> None:
    """Statuses that arrived for this message's provider id before we recorded sending it."""
    if message.provider_message_id is None:
        return
    early = list(
        session.scalars(
            select(EarlyStatus).where(
                EarlyStatus.channel == message.channel,
                EarlyStatus.provider_message_id == message.provider_message_id,
            )
        )
    )
    for status in sorted(early, key=lambda row: row.status.rank):
        advance_delivery(
            message, status.status, status.error, NEEDS_TEMPLATE if status.needs_template else None
        )
        session.delete(status)


def _keep_early(session: Session, update: DeliveryUpdate, provider_message_id: str) -> None:
    known = session.scalar(
        select(EarlyStatus.id).where(
            EarlyStatus.channel == update.channel,
            EarlyStatus.provider_message_id == provider_message_id,
            EarlyStatus.status == update.status,
        )
    )
    if known is None:
        session.add(
            EarlyStatus(
                channel=update.channel,
                provider_message_id=provider_message_id,
                status=update.status,
                error=update.error,
                needs_template=update.needs_template,
            )
        )


def advance_delivery(
    message: Message, status: DeliveryStatus, error: str | None = None, code: str | None = None
) -> bool:
    current = message.delivery_status
    if current is not None and status.rank <= current.rank and status != DeliveryStatus.FAILED:
        return False
    if current == status:
        return False
    if status == DeliveryStatus.FAILED and current is not None and current.rank > DeliveryStatus.SENT.rank:
        return False  # it was delivered or read; a late failure report does not undo that
    message.delivery_status = status
    message.delivery_error = error if status == DeliveryStatus.FAILED else None
    message.delivery_error_code = code if status == DeliveryStatus.FAILED else None
    return True


def _resolve_lead(session: Session, channel: str, profile: LeadProfile) -> Lead:
    """The lead this person is: known by this channel's id for them, else by email address, else by
    phone number (both normalised, core.identity); else a new lead."""
    identities = [(channel, fit_key(profile.provider_id, _EMAIL))]
    for kind, value in ((EMAIL, normal_email(profile.email)), (PHONE, normal_phone(profile.phone))):
        if value is not None and len(value) <= _EMAIL:
            identities.append((kind, value))
    identities = list(dict.fromkeys(identities))  # the email channel's own id for a person is the address
    known = {
        (row.kind, row.value): row.lead_id
        for row in session.execute(
            select(LeadIdentity.kind, LeadIdentity.value, LeadIdentity.lead_id).where(
                or_(
                    *(
                        and_(LeadIdentity.kind == kind, LeadIdentity.value == value)
                        for kind, value in identities
                    )
                )
            )
        )
    }
    lead_id = next((known[identity] for identity in identities if identity in known), None)
    lead = None if lead_id is None else session.get(Lead, lead_id)
    if lead is None:
        lead = Lead()
        session.add(lead)
        session.flush()
    for kind, value in identities:
        if (kind, value) not in known:
            session.add(LeadIdentity(lead_id=lead.id, kind=kind, value=value))
    # Fill what we did not know; never overwrite what a teammate may have corrected.
    limits = {"name": _NAME, "email": _EMAIL, "phone": _PHONE, "company": _NAME, "title": _NAME}
    for field in ("name", "email", "phone", "company", "title", "profile_url", "avatar_url"):
        value = getattr(profile, field)
        if value and not getattr(lead, field):
            setattr(lead, field, fit(value, limits.get(field, _URL)))
    session.flush()  # a concurrent first message from the same lead fails here and the use-case retries
    return lead


def _find_conversation(session: Session, inbound: Inbound) -> Conversation | None:
    account, thread = fit_key(inbound.channel_account, _ACCOUNT), fit_key(inbound.provider_thread_id, _THREAD)
    return session.scalar(
        select(Conversation)
        .where(
            Conversation.channel == inbound.channel,
            Conversation.channel_account == account,
            Conversation.provider_thread_id == thread,
        )
        .with_for_update(of=Conversation)
    )


def _find_or_start_conversation(
    session: Session, lead: Lead, inbound: Inbound, *, ai_available: bool
) -> Conversation:
    conversation = _find_conversation(session, inbound)
    if conversation is not None:
        return conversation
    account, thread = fit_key(inbound.channel_account, _ACCOUNT), fit_key(inbound.provider_thread_id, _THREAD)
    conversation = Conversation(
        lead=lead,
        channel=inbound.channel,
        channel_account=account,
        provider_thread_id=thread,
        status=Status.OPEN,
        ai_mode=AIMode.ACTIVE if ai_available else AIMode.MANUAL,
        campaign_id=lead.campaign_id,
    )
    campaign = fit(inbound.campaign, _CAMPAIGN)
    if campaign and campaign.strip():
        conversation.campaign = campaign_named(session, campaign.strip())
        if lead.campaign_id is None:
            lead.campaign = conversation.campaign
    session.add(conversation)
    session.flush()
    record(session, conversation, "created", LEAD, new={"channel": inbound.channel})
    return conversation
