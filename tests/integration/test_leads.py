"""The card kept live and the lead corrected, against real databases and the strict Slack stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from bot.blocks.card import build_card
from bot.blocks.modals import build_edit_lead_modal, build_lead_modal, build_tags_modal
from bot.blocks.thread import build_thread_entry
from core.actions.conversation import do_close, do_set_tags, do_take_over
from core.actions.inbound import do_receive
from core.actions.leads import InvalidLeadEdit, LeadEdit, do_edit_lead
from core.actions.replies import do_note
from core.db import Database
from core.models import Campaign, Conversation, Event, Lead, LeadIdentity, Outbox, OutboxStatus, Status, Tag
from core.outbox import JobKind, OutboxRunner
from core.ports import Inbound, LeadProfile
from core.queries.lead import OtherConversation, lead_view
from tests.conftest import SPECS, handlers
from tests.integration.test_mirror import CHANNEL, TOKEN, make_mirror
from tests.integration.test_use_cases import member, whatsapp_text
from tests.standins.block_kit import block_problems
from tests.standins.slack_api import SlackStandIn
from tests.unit.test_blocks import huge_conversation, make_message
from tests.unit.test_blocks import lead_view as lead_view_of

AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(SPECS / "slack" / "methods", bot_token=TOKEN) as standin:
        standin.add_channel(CHANNEL, "leads")
        yield standin
        assert standin.violations == []


def email_from(address: str, text: str, *, thread: str, message_id: str) -> Inbound:
    return Inbound(
        channel="email",
        channel_account="sales@example.com",
        provider_thread_id=thread,
        provider_message_id=message_id,
        sender=LeadProfile(provider_id=address, name="Jane Doe", email=address),
        sent_at=AT,
        text=text,
    )


def receive(db: Database, inbound: Inbound) -> int:
    return db.run(lambda s: do_receive(s, inbound, ai_available=False)).conversation_id


def run_outbox(db: Database, runner: OutboxRunner) -> None:
    for offer in runner.due(fresh_start=True):
        runner.run(offer.id)


def pending_mirrors(db: Database) -> list[int | None]:
    with db.sessions() as session:
        return list(
            session.scalars(
                select(Outbox.conversation_id)
                .where(Outbox.kind == JobKind.MIRROR, Outbox.status == OutboxStatus.PENDING)
                .order_by(Outbox.conversation_id)
            )
        )


def test_a_burst_of_changes_is_one_card_update(db: Database, slack: SlackStandIn):
    runner = OutboxRunner(db, handlers({JobKind.MIRROR: make_mirror(db, slack)}))
    conversation_id = receive(db, whatsapp_text("Hello", message_id="wamid.burst"))
    run_outbox(db, runner)
    [card] = slack.messages(CHANNEL)
    ana = member(db)

    db.run(lambda s: do_take_over(s, conversation_id, actor=ana))
    db.run(lambda s: do_set_tags(s, conversation_id, ["vip", "demo"], actor=ana))
    db.run(lambda s: do_close(s, conversation_id, actor=ana))
    assert pending_mirrors(db) == [conversation_id]  # three changes, one mirror waiting

    run_outbox(db, runner)
    assert len(slack.calls_to("chat.update")) == 1
    shown = json.dumps(slack.message(CHANNEL, card["ts"]))
    assert all(word in shown for word in ("Closed", "<@U1>", "vip", "demo"))
    run_outbox(db, runner)  # nothing new: the card is not sent again
    assert len(slack.calls_to("chat.update")) == 1 and len(slack.messages(CHANNEL)) == 1


def test_a_lead_on_a_second_channel_is_linked_from_both_cards(db: Database, slack: SlackStandIn):
    runner = OutboxRunner(db, handlers({JobKind.MIRROR: make_mirror(db, slack)}))
    receive(db, whatsapp_text("Hi", message_id="wamid.both", wa_id="15551230002"))
    run_outbox(db, runner)
    [first] = slack.messages(CHANNEL)
    assert "Also" not in json.dumps(first["blocks"])

    receive(db, linkedin_from("ACoBOTH", "Hey", phone="+15551230002"))
    run_outbox(db, runner)  # the new thread is posted; its card links back, and the first card is redrawn
    run_outbox(db, runner)
    cards = {card["ts"]: slack.message(CHANNEL, card["ts"]) for card in slack.messages(CHANNEL)}
    assert len(cards) == 2
    with db.sessions() as session:
        threads = {
            c.channel: c.slack_thread_ts for c in session.scalars(select(Conversation)) if c.slack_thread_ts
        }
    whatsapp_card, linkedin_card = (
        json.dumps(cards[threads["whatsapp"]]),
        json.dumps(cards[threads["linkedin"]]),
    )
    assert f"p{threads['linkedin'].replace('.', '')}|:briefcase: LinkedIn>" in whatsapp_card
    assert f"p{threads['whatsapp'].replace('.', '')}|:speech_balloon: WhatsApp>" in linkedin_card
    assert pending_mirrors(db) == []  # settled: nothing keeps redrawing the other


def test_a_conversation_with_500_tags_still_has_a_valid_card(db: Database, slack: SlackStandIn):
    # do_set_tags caps at 50: the 500 are put in directly, to prove the card copes whatever the data.
    conversation_id = receive(db, whatsapp_text("Hello", message_id="wamid.tags"))
    with db.transaction() as session:
        conversation = session.get_one(Conversation, conversation_id)
        conversation.tags = [Tag(name=f"tag-{i:03}-" + "&" * 50) for i in range(500)]
    make_mirror(db, slack).sync(conversation_id)
    [card] = slack.messages(CHANNEL)
    assert "+" in json.dumps(card["blocks"]) and "more" in json.dumps(card["blocks"])
    with db.sessions() as session:
        _, blocks = build_card(session.get_one(Conversation, conversation_id), ai_available=False)
    assert list(block_problems(blocks)) == []


def test_edit_lead_corrects_the_lead_records_who_and_redraws_every_card(db: Database):
    first = receive(db, email_from("jane@acme.test", "Hi", thread="<a@acme>", message_id="<m1@acme>"))
    second = receive(db, email_from("jane@acme.test", "Also", thread="<b@acme>", message_id="<m2@acme>"))
    with db.transaction() as session:
        session.add(Campaign(name="Spring Sale"))
        session.execute(Outbox.__table__.update().values(status=OutboxStatus.DONE))
    ana = member(db)

    edit = LeadEdit(
        name="  Jane   Roe ",
        company="Acme",
        title="CTO",
        email="jane@acme.test",
        phone="+44 (20) 7946-0958",
        campaign="SPRING sale",
    )
    result = db.run(lambda s: do_edit_lead(s, first, edit, actor=ana))

    assert result.changed
    with db.sessions() as session:
        conversation = session.get_one(Conversation, first)
        lead = conversation.lead
        assert (lead.name, lead.company, lead.title, lead.phone) == (
            "Jane Roe",
            "Acme",
            "CTO",
            "+442079460958",
        )
        assert conversation.campaign is not None and conversation.campaign.name == "Spring Sale"
        assert lead.campaign_id == conversation.campaign_id
        assert session.get_one(Conversation, second).campaign_id is None  # its own campaign stays
        assert session.scalar(select(Campaign.id).where(Campaign.name == "SPRING sale")) is None
        [event] = session.scalars(select(Event).where(Event.kind == "lead"))
        assert event.member_id == ana.member_id and event.conversation_id == first
        assert event.old is not None and event.new is not None
        assert (event.old["name"], event.new["name"]) == ("Jane Doe", "Jane Roe")
        assert (event.old["campaign"], event.new["campaign"]) == (None, "Spring Sale")
    assert pending_mirrors(db) == [first, second]  # both of the lead's cards update

    again = db.run(lambda s: do_edit_lead(s, first, edit, actor=ana))
    assert not again.changed  # the same values: no event, no card work
    with db.sessions() as session:
        assert len(list(session.scalars(select(Event).where(Event.kind == "lead")))) == 1

    db.run(lambda s: do_edit_lead(s, first, LeadEdit(name="Jane Roe", campaign="Autumn"), actor=ana))
    with db.sessions() as session:
        lead = session.get_one(Conversation, first).lead
        assert lead.email is None and lead.company is None  # emptied fields are cleared
        assert session.scalar(select(Campaign.name).where(Campaign.id == lead.campaign_id)) == "Autumn"


@pytest.mark.parametrize(
    ("edit", "fields"),
    [
        (LeadEdit(email="jane.acme.test"), {"email"}),
        (LeadEdit(email="jane@acme"), {"email"}),
        (LeadEdit(phone="call me"), {"phone"}),
        (LeadEdit(phone="+1 555"), {"phone"}),
        (LeadEdit(phone="1" * 16), {"phone"}),
        (LeadEdit(name="N" * 201, company="C" * 201, campaign="x" * 201), {"name", "company", "campaign"}),
    ],
)
def test_edit_lead_refuses_bad_fields_and_changes_nothing(db: Database, edit: LeadEdit, fields: set[str]):
    conversation_id = receive(db, whatsapp_text("Hi", message_id="wamid.bad"))
    ana = member(db)
    with pytest.raises(InvalidLeadEdit) as refused:
        db.run(lambda s: do_edit_lead(s, conversation_id, edit, actor=ana))
    assert set(refused.value.problems) == fields
    with db.sessions() as session:
        assert session.get_one(Conversation, conversation_id).lead.name == "Jane Doe"
        assert list(session.scalars(select(Event).where(Event.kind == "lead"))) == []


def test_an_email_a_rep_records_brings_the_leads_mail_to_the_same_lead(db: Database):
    on_whatsapp = receive(db, whatsapp_text("Hi", message_id="wamid.who"))
    ana = member(db)
    db.run(
        lambda s: do_edit_lead(s, on_whatsapp, LeadEdit(name="Jane Doe", email="Jane@Acme.test"), actor=ana)
    )
    by_mail = receive(db, email_from("jane@acme.test", "It's me", thread="<t@acme>", message_id="<x@acme>"))
    with db.sessions() as session:
        assert (
            session.get_one(Conversation, by_mail).lead_id
            == session.get_one(Conversation, on_whatsapp).lead_id
        )
        assert session.query(Lead).count() == 1


def linkedin_from(
    provider_id: str, text: str, *, phone: str | None = None, email: str | None = None
) -> Inbound:
    return Inbound(
        channel="linkedin",
        channel_account="ACC1",
        provider_thread_id=f"chat-{provider_id}",
        provider_message_id=f"li-{provider_id}-{text}",
        sender=LeadProfile(provider_id=provider_id, name="Jane D.", phone=phone, email=email),
        sent_at=AT,
        text=text,
    )


def test_a_number_a_rep_records_brings_the_leads_whatsapp_to_the_same_lead(db: Database):
    by_mail = receive(db, email_from("li@acme.test", "Hello", thread="<t4@acme>", message_id="<m4@acme>"))
    ana = member(db)
    db.run(lambda s: do_edit_lead(s, by_mail, LeadEdit(name="Li", phone="+44 20 7946 0958"), actor=ana))
    on_whatsapp = receive(db, whatsapp_text("Hi, Li here", message_id="wamid.x3", wa_id="442079460958"))
    with db.sessions() as session:
        assert (
            session.get_one(Conversation, on_whatsapp).lead_id
            == session.get_one(Conversation, by_mail).lead_id
        )


def test_one_person_on_three_channels_is_one_lead_with_a_conversation_each(db: Database):
    on_whatsapp = receive(db, whatsapp_text("Hi", message_id="wamid.x1", wa_id="15551230001"))
    # LinkedIn spells her number its own way, and also knows her address
    on_linkedin = receive(
        db, linkedin_from("ACoAAJ", "Hey", phone="+1 (555) 123-0001", email="Jane@Acme.test")
    )
    by_mail = receive(db, email_from("jane@acme.test", "Hello", thread="<t1@acme>", message_id="<m1@acme>"))
    with db.sessions() as session:
        conversations = [session.get_one(Conversation, c) for c in (on_whatsapp, on_linkedin, by_mail)]
        assert {c.lead_id for c in conversations} == {conversations[0].lead_id}
        assert [c.channel for c in conversations] == ["whatsapp", "linkedin", "email"]
        assert session.query(Lead).count() == 1
    assert len({on_whatsapp, on_linkedin, by_mail}) == 3  # each channel keeps its own conversation


def test_when_address_and_number_name_two_leads_the_address_wins_and_nothing_is_merged(db: Database):
    by_mail = receive(db, email_from("bo@acme.test", "Hello", thread="<t3@acme>", message_id="<m3@acme>"))
    on_whatsapp = receive(db, whatsapp_text("Hi", message_id="wamid.x2", wa_id="4915112345678"))
    both = receive(db, linkedin_from("ACoBO", "Hey", phone="+49 151 12345678", email="BO@acme.test"))
    with db.sessions() as session:
        lead_of = {c: session.get_one(Conversation, c).lead_id for c in (by_mail, on_whatsapp, both)}
        phone_owner = session.scalar(
            select(LeadIdentity.lead_id).where(
                LeadIdentity.kind == "phone", LeadIdentity.value == "+4915112345678"
            )
        )
    assert lead_of[both] == lead_of[by_mail] != lead_of[on_whatsapp]
    assert phone_owner == lead_of[on_whatsapp]  # the number still recognises the WhatsApp lead


def test_lead_view_counts_every_visible_conversation_and_hides_the_others(db: Database):
    here = receive(db, email_from("jane@acme.test", "Hi", thread="<a@acme>", message_id="<1@acme>"))
    receive(db, email_from("jane@acme.test", "Again", thread="<a@acme>", message_id="<2@acme>"))
    seen = receive(db, email_from("jane@acme.test", "Other", thread="<b@acme>", message_id="<3@acme>"))
    unseen = receive(db, email_from("jane@acme.test", "Secret", thread="<c@acme>", message_id="<4@acme>"))
    stranger = receive(db, whatsapp_text("Not Jane", message_id="wamid.x", wa_id="15559999999"))
    with db.transaction() as session:
        for conversation_id, channel, ts in (
            (here, "C0A", "1.1"),
            (seen, "C0B", "2.2"),
            (unseen, "C0SECRET", "3.3"),
            (stranger, "C0A", "4.4"),
        ):
            conversation = session.get_one(Conversation, conversation_id)
            conversation.slack_channel, conversation.slack_thread_ts = channel, ts
    ana = member(db)
    db.run(lambda s: do_note(s, here, "internal", slack_channel="C0A", slack_ts="9.9", actor=ana))

    with db.sessions() as session:
        view = lead_view(session, here, channels=["C0A", "C0B"])
    assert (view.from_lead, view.to_lead, view.notes, view.conversations) == (3, 0, 1, 2)
    assert [(o.id, o.slack_channel, o.slack_thread_ts) for o in view.others] == [(seen, "C0B", "2.2")]
    assert view.hidden == 1 and view.more_others == 0
    assert view.first_contact == view.last_contact == AT  # when the lead wrote, not when we stored it
    assert view.conversation.lead.name == "Jane Doe"


def test_every_surface_passes_the_slack_standin_with_huge_leads_and_500_tags(slack: SlackStandIn):
    """The builders' output, sent as the app sends it, with 10,000-character lead strings and 500 tags
    (more than the database would hold: the builders must cope whatever they are given)."""
    huge = huge_conversation(tag_count=500)
    client = WebClient(token=TOKEN, base_url=slack.base_url, retry_handlers=[])
    text, blocks = build_card(huge, ai_available=True)
    card_ts = client.chat_postMessage(channel=CHANNEL, text=text, blocks=blocks)["ts"]
    client.chat_update(channel=CHANNEL, ts=card_ts, text=text, blocks=blocks)
    entry_text, entry_blocks = build_thread_entry(
        make_message(text="<!channel> " * 1000), huge.lead.name or ""
    )
    client.chat_postMessage(channel=CHANNEL, text=entry_text, blocks=entry_blocks, thread_ts=card_ts)
    others = [
        OtherConversation(i, "email", Status.OPEN, "C0MAIL", f"1700000000.{i:06}", AT) for i in range(10)
    ]
    known_tags = [f"known-{i:03}-" + "x" * 100 for i in range(500)]
    for view in (
        build_lead_modal(
            lead_view_of(huge, others=others, more_others=10**6, hidden=10**6, from_lead=10**9),
            workspace_url="https://threadline-test.slack.com/",
        ),
        build_edit_lead_modal(huge),
        build_tags_modal(huge, known_tags),
    ):
        client.views_open(trigger_id=slack.issue_trigger_id(), view=view)
    assert slack.violations == [] and len(slack.opened_views) == 3
