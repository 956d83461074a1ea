"""Use-cases against real databases (SQLite and PostgreSQL): state, audit events, outbox, dedupe."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from core.actions.common import Actor
from core.actions.conversation import (
    do_add_tag,
    do_assign,
    do_close,
    do_remove_tag,
    do_reopen,
    do_resume_ai,
    do_set_manual,
    do_set_tags,
    do_take_over,
)
from core.actions.inbound import do_receive, do_record_delivery
from core.actions.locks import claim_delivery_key
from core.actions.members import do_register_member
from core.actions.replies import do_note, do_reply
from core.db import Database
from core.errors import InvalidAction
from core.models import (
    AIMode,
    Campaign,
    Conversation,
    DeliveryStatus,
    Direction,
    Event,
    Lead,
    LeadIdentity,
    Message,
    Outbox,
    Status,
)
from core.outbox import JobKind
from core.ports import DeliveryUpdate, Inbound, LeadProfile
from tests.conftest import DispatchLog

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def whatsapp_text(
    text: str, *, message_id: str, wa_id: str = "15551230001", name: str = "Jane Doe"
) -> Inbound:
    return Inbound(
        channel="whatsapp",
        channel_account="PHONE1",
        provider_thread_id=wa_id,
        provider_message_id=message_id,
        sender=LeadProfile(provider_id=wa_id, name=name, phone="+" + wa_id),
        sent_at=NOW,
        text=text,
    )


def outbox_kinds(db: Database, conversation_id: int) -> list[str]:
    with db.sessions() as session:
        return list(
            session.scalars(
                select(Outbox.kind).where(Outbox.conversation_id == conversation_id).order_by(Outbox.id)
            )
        )


def member(db: Database, user_id: str = "U1", name: str = "Ana") -> Actor:
    registered = db.run(
        lambda s: do_register_member(s, user_id, name=name, email=f"{name.lower()}@example.com")
    )
    return Actor.member(registered)


def receive(db: Database, inbound: Inbound, *, ai: bool = False):  # type: ignore[no-untyped-def]
    return db.run(lambda s: do_receive(s, inbound, ai_available=ai))


def load(db: Database, conversation_id: int) -> Conversation:
    with db.sessions() as session:
        return session.get_one(Conversation, conversation_id)


def test_first_message_creates_lead_conversation_and_queues_the_mirror(db: Database, dispatched: DispatchLog):
    result = receive(db, whatsapp_text("Hi, is the Pro plan available?", message_id="wamid.1"))

    conversation = load(db, result.conversation_id)
    assert conversation.status == Status.OPEN
    assert conversation.ai_mode == AIMode.MANUAL  # AI off: people handle it
    assert conversation.unread_count == 1
    assert conversation.lead.name == "Jane Doe" and conversation.lead.phone == "+15551230001"
    with db.sessions() as session:
        identities = session.execute(select(LeadIdentity.kind, LeadIdentity.value)).all()
    assert sorted(tuple(row) for row in identities) == [
        ("phone", "+15551230001"),
        ("whatsapp", "15551230001"),
    ]
    assert outbox_kinds(db, result.conversation_id) == [JobKind.MIRROR]
    assert len(dispatched.ids) == 1  # handed to the worker only after commit


def test_same_provider_message_twice_is_stored_once_and_changes_nothing(
    db: Database, dispatched: DispatchLog
):
    first = receive(db, whatsapp_text("hello", message_id="wamid.dup"))
    again = receive(db, whatsapp_text("hello", message_id="wamid.dup"))

    assert again.duplicate and again.message_id == first.message_id
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1
    assert load(db, first.conversation_id).unread_count == 1
    assert outbox_kinds(db, first.conversation_id) == [JobKind.MIRROR]


def test_second_message_joins_the_same_conversation(db: Database):
    first = receive(db, whatsapp_text("one", message_id="wamid.a"))
    second = receive(db, whatsapp_text("two", message_id="wamid.b"))

    assert second.conversation_id == first.conversation_id
    assert load(db, first.conversation_id).unread_count == 2
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 1


def test_with_an_agent_available_a_new_conversation_starts_ai_active(db: Database):
    result = receive(db, whatsapp_text("pricing?", message_id="wamid.ai"), ai=True)
    assert load(db, result.conversation_id).ai_mode == AIMode.ACTIVE
    assert outbox_kinds(db, result.conversation_id) == [JobKind.MIRROR, JobKind.AI_REPLY]  # the AI's turn


def test_reply_queues_delivery_pauses_ai_and_makes_it_pending(db: Database):
    conversation_id = receive(db, whatsapp_text("hi", message_id="wamid.r"), ai=True).conversation_id
    ana = member(db)

    posted = db.run(
        lambda s: do_reply(s, conversation_id, "Hello Jane!", actor=ana, slack_channel="C1", slack_ts="1.1")
    )

    conversation = load(db, conversation_id)
    assert conversation.status == Status.PENDING
    assert conversation.ai_mode == AIMode.PAUSED
    assert conversation.unread_count == 0 and conversation.first_response_at is not None
    queued = outbox_kinds(db, conversation_id)
    assert queued.count(JobKind.DELIVER) == 1 and JobKind.MIRROR in queued
    with db.sessions() as session:
        message = session.get_one(Message, posted.message_id)
        assert message.direction == Direction.OUTBOUND and message.delivery_status == DeliveryStatus.QUEUED
        kinds = list(session.scalars(select(Event.kind).where(Event.conversation_id == conversation_id)))
    assert "ai_mode" in kinds and "status" in kinds


def test_the_same_slack_message_is_one_reply(db: Database):
    conversation_id = receive(db, whatsapp_text("hi", message_id="wamid.s")).conversation_id
    ana = member(db)
    first = db.run(
        lambda s: do_reply(s, conversation_id, "Hi!", actor=ana, slack_channel="C1", slack_ts="2.2")
    )
    again = db.run(
        lambda s: do_reply(s, conversation_id, "Hi!", actor=ana, slack_channel="C1", slack_ts="2.2")
    )
    assert again.duplicate and again.message_id == first.message_id
    assert outbox_kinds(db, conversation_id).count(JobKind.DELIVER) == 1


def test_replying_to_a_closed_conversation_makes_it_pending(db: Database):
    conversation_id = receive(db, whatsapp_text("hi", message_id="wamid.cr")).conversation_id
    ana = member(db)
    db.run(lambda s: do_close(s, conversation_id, actor=ana))
    db.run(
        lambda s: do_reply(
            s, conversation_id, "One more offer", actor=ana, slack_channel="C1", slack_ts="9.9"
        )
    )
    conversation = load(db, conversation_id)
    assert conversation.status == Status.PENDING and conversation.closed_at is None


def test_note_is_stored_and_never_delivered(db: Database):
    conversation_id = receive(db, whatsapp_text("hi", message_id="wamid.n")).conversation_id
    ana = member(db)
    db.run(
        lambda s: do_note(
            s, conversation_id, "Bob, big account", actor=ana, slack_channel="C1", slack_ts="3.3"
        )
    )
    assert JobKind.DELIVER not in outbox_kinds(db, conversation_id)
    assert load(db, conversation_id).status == Status.OPEN


def test_lead_message_reopens_a_closed_conversation(db: Database):
    conversation_id = receive(db, whatsapp_text("hi", message_id="wamid.c1")).conversation_id
    ana = member(db)
    db.run(lambda s: do_close(s, conversation_id, actor=ana))
    assert load(db, conversation_id).status == Status.CLOSED

    receive(db, whatsapp_text("one more thing", message_id="wamid.c2"))
    assert load(db, conversation_id).status == Status.OPEN


def test_buttons_change_state_once_and_record_who(db: Database):
    conversation_id = receive(db, whatsapp_text("hi", message_id="wamid.b1"), ai=True).conversation_id
    ana, bob = member(db, "U1", "Ana"), member(db, "U2", "Bob")

    assert db.run(lambda s: do_take_over(s, conversation_id, actor=ana)).changed
    conversation = load(db, conversation_id)
    assert conversation.ai_mode == AIMode.PAUSED and conversation.assignee_id == ana.member_id
    assert not db.run(lambda s: do_take_over(s, conversation_id, actor=ana)).changed

    assert db.run(lambda s: do_resume_ai(s, conversation_id, actor=ana, ai_available=True)).changed
    assert load(db, conversation_id).ai_mode == AIMode.ACTIVE
    assert db.run(lambda s: do_set_manual(s, conversation_id, actor=ana)).changed
    assert load(db, conversation_id).ai_mode == AIMode.MANUAL

    assert db.run(lambda s: do_assign(s, conversation_id, bob.member_id, actor=ana)).changed
    assert JobKind.NOTIFY_ASSIGNEE in outbox_kinds(db, conversation_id)

    db.run(lambda s: do_set_tags(s, conversation_id, ["VIP", "  pricing "], actor=ana))
    assert [t.name for t in load(db, conversation_id).tags] == ["pricing", "vip"]
    db.run(lambda s: do_add_tag(s, conversation_id, "Renewal", actor=bob))
    db.run(lambda s: do_remove_tag(s, conversation_id, "VIP", actor=bob))
    assert [t.name for t in load(db, conversation_id).tags] == ["pricing", "renewal"]

    assert db.run(lambda s: do_close(s, conversation_id, actor=ana)).changed
    assert load(db, conversation_id).closed_at is not None
    assert db.run(lambda s: do_reopen(s, conversation_id, actor=bob)).changed
    assert load(db, conversation_id).status == Status.OPEN

    with db.sessions() as session:
        events = list(session.scalars(select(Event).where(Event.conversation_id == conversation_id)))
    assert {e.kind for e in events} >= {"ai_mode", "assignee", "tags", "status"}
    assert all(e.member_id in {ana.member_id, bob.member_id} for e in events if e.kind != "created")


def test_resume_ai_without_an_agent_is_a_clear_error_and_changes_nothing(db: Database):
    conversation_id = receive(db, whatsapp_text("hi", message_id="wamid.off")).conversation_id
    ana = member(db)
    with pytest.raises(InvalidAction, match="AI agent is not running"):
        db.run(lambda s: do_resume_ai(s, conversation_id, actor=ana, ai_available=False))
    assert load(db, conversation_id).ai_mode == AIMode.MANUAL


def test_delivery_status_never_moves_backwards(db: Database):
    conversation_id = receive(db, whatsapp_text("hi", message_id="wamid.d")).conversation_id
    ana = member(db)
    posted = db.run(
        lambda s: do_reply(s, conversation_id, "yo", actor=ana, slack_channel="C1", slack_ts="4.4")
    )
    with db.transaction() as session:
        message = session.get_one(Message, posted.message_id)
        message.provider_message_id, message.delivery_status = "wamid.out", DeliveryStatus.SENT

    def update(status: DeliveryStatus) -> bool:
        return db.run(lambda s: do_record_delivery(s, DeliveryUpdate("whatsapp", "wamid.out", status, NOW)))

    assert update(DeliveryStatus.READ)
    assert not update(DeliveryStatus.DELIVERED)  # arrived late: read already says more
    assert not update(DeliveryStatus.FAILED)  # a failure report after it was read changes nothing
    with db.sessions() as session:
        assert session.get_one(Message, posted.message_id).delivery_status == DeliveryStatus.READ


def test_delivery_key_is_claimed_once(db: Database):
    assert db.run(lambda s: claim_delivery_key(s, "slack", "Ev1"))
    assert not db.run(lambda s: claim_delivery_key(s, "slack", "Ev1"))


def test_tags_are_bounded_in_the_use_case_whatever_face_asks(db: Database):
    conversation_id = receive(db, whatsapp_text("hi", message_id="wamid.tagcap")).conversation_id
    ana = member(db)
    with pytest.raises(InvalidAction, match="At most 10 new tags"):
        db.run(lambda s: do_set_tags(s, conversation_id, [f"t{i}" for i in range(11)], actor=ana))
    db.run(lambda s: do_set_tags(s, conversation_id, [f"t{i}" for i in range(10)], actor=ana))
    known_and_new = [f"t{i}" for i in range(10)] + [f"u{i}" for i in range(10)]
    assert db.run(lambda s: do_set_tags(s, conversation_id, known_and_new, actor=ana)).changed  # 10 new: fine
    with pytest.raises(InvalidAction, match="at most 50 tags"):
        db.run(lambda s: do_set_tags(s, conversation_id, [f"v{i % 10}-{i}" for i in range(51)], actor=ana))
    assert len(load(db, conversation_id).tags) == 20


def test_the_campaign_a_message_came_through_is_the_new_conversations_and_the_leads(db: Database):
    first = dataclasses.replace(whatsapp_text("saw your ad", message_id="wamid.ad1"), campaign="Spring Sale")
    conversation_id = receive(db, first).conversation_id
    again = dataclasses.replace(
        whatsapp_text("me again", message_id="wamid.ad2"), campaign="Another Ad", provider_thread_id="x"
    )
    other_id = receive(db, again).conversation_id
    by_email = dataclasses.replace(
        whatsapp_text("mail", message_id="wamid.ad3", wa_id="15550009999"), campaign="spring sale"
    )
    third_id = receive(db, by_email).conversation_id
    with db.sessions() as session:
        conversation = session.get_one(Conversation, conversation_id)
        assert conversation.campaign is not None and conversation.campaign.name == "Spring Sale"
        assert conversation.lead.campaign is not None and conversation.lead.campaign.name == "Spring Sale"
        other = session.get_one(Conversation, other_id)  # same lead, another thread: its own campaign
        assert other.campaign is not None and other.campaign.name == "Another Ad"
        assert other.lead.campaign is not None and other.lead.campaign.name == "Spring Sale"
        third = session.get_one(Conversation, third_id)  # names compare case-insensitively
        assert third.campaign_id == conversation.campaign_id
        assert session.scalar(select(func.count()).select_from(Campaign)) == 2
