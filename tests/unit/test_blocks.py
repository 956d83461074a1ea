"""Pure Block Kit builders: valid Block Kit, state in words, lead text inert.

Every output goes through slack_sdk's own models, which raise on any Block Kit limit they know, and
through the Slack stand-in's checks of the limits slack_sdk misses.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.blocks import ids
from bot.blocks.card import build_card, card_fingerprint
from bot.blocks.modals import (
    build_edit_lead_modal,
    build_lead_modal,
    build_tags_modal,
    parse_lead_edit,
    parse_tags_submission,
)
from bot.blocks.thread import build_delivery_failure, build_thread_entry, delivery_reaction
from bot.mrkdwn import unescape
from core.actions.leads import LeadEdit
from core.models import (
    AIMode,
    Author,
    Campaign,
    Conversation,
    DeliveryStatus,
    Direction,
    Lead,
    Member,
    Message,
    Status,
    Tag,
)
from core.queries.lead import LeadView, OtherConversation
from tests.standins.block_kit import block_problems, view_problems

HOSTILE = "<!channel> & <@U999>"
HOSTILE_ESCAPED = "&lt;!channel&gt; &amp; &lt;@U999&gt;"
AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
ANA = Member(slack_user_id="U0ANA", name="Ana")


# --- helpers --------------------------------------------------------------------------------------------


def valid_blocks(blocks: list[dict[str, Any]], *, most: int = 50) -> list[dict[str, Any]]:
    assert 0 < len(blocks) <= most
    parsed = [Block.parse(block) for block in blocks]
    known = [block for block in parsed if block is not None and type(block) is not Block]
    assert len(known) == len(blocks), "unknown block type"
    assert list(block_problems(blocks)) == []  # the limits slack_sdk does not check
    return [block.to_dict() for block in known]  # raises SlackObjectFormationError on a limit


def valid_view(view: dict[str, Any]) -> dict[str, Any]:
    valid_blocks(view["blocks"], most=100)
    assert list(view_problems(view)) == []
    return View(**view).to_dict()


def conversation(**overrides: Any) -> Conversation:
    values: dict[str, Any] = {
        "id": 7,
        "lead": Lead(name="Jane Doe", company="Acme", title="CTO", phone="+15551234567", created_at=AT),
        "channel": "whatsapp",
        "status": Status.OPEN,
        "ai_mode": AIMode.MANUAL,
        "assignee": None,
        "campaign": None,
        "tags": [],
        "unread_count": 0,
        "last_activity_at": AT,
        "created_at": AT,
    }
    values.update(overrides)
    return Conversation(**values)


def lead_view(c: Conversation, **overrides: Any) -> LeadView:
    values: dict[str, Any] = {
        "conversation": c,
        "from_lead": 0,
        "to_lead": 0,
        "notes": 0,
        "conversations": 1,
        "first_contact": None,
        "last_contact": None,
        "others": [],
        "more_others": 0,
        "hidden": 0,
    }
    values.update(overrides)
    return LeadView(**values)


def make_message(
    *,
    id: int = 1,
    text: str = "hi",
    author: Author = Author.LEAD,
    member: Member | None = None,
    kind: str = "text",
    created_at: datetime | None = AT,
) -> Message:
    direction = Direction.INBOUND if author == Author.LEAD else Direction.OUTBOUND
    return Message(
        id=id,
        channel="whatsapp",
        direction=direction,
        author=author,
        member=member,
        text=text,
        kind=kind,
        created_at=created_at,
    )


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def sections(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]


def fingerprint(c: Conversation) -> str:
    return card_fingerprint(*build_card(c, ai_available=True))


# --- the card -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "mode", "words"),
    [
        (Status.OPEN, AIMode.ACTIVE, ["Open", "AI: active"]),
        (Status.PENDING, AIMode.PAUSED, ["Pending", "AI: paused"]),
        (Status.CLOSED, AIMode.MANUAL, ["Closed", "AI: manual"]),
    ],
)
def test_card_says_status_and_ai_mode_in_words(status: Status, mode: AIMode, words: list[str]):
    text, blocks = build_card(conversation(status=status, ai_mode=mode), ai_available=True)
    rendered = json.dumps(valid_blocks(blocks))
    for word in words:
        assert word in text and word in rendered


def test_card_fallback_text_reads_the_whole_state():
    text, _ = build_card(conversation(), ai_available=True)
    assert text == (
        "WhatsApp · Jane Doe (CTO, Acme) · Open · AI: manual · Unassigned"
        " · Last activity 2026-11-25 09:30 UTC"
    )
    text, _ = build_card(
        conversation(
            assignee=ANA,
            tags=[Tag(name="pricing"), Tag(name="vip")],
            campaign=Campaign(name="Q4"),
            unread_count=2,
        ),
        ai_available=True,
    )
    assert text == (
        "WhatsApp · Jane Doe (CTO, Acme) · Open · AI: manual · <@U0ANA> · Tags: pricing, vip"
        " · Campaign: Q4 · 2 unread · Last activity 2026-11-25 09:30 UTC"
    )


def test_card_names_assignee_as_mention_and_lists_tags_and_campaign():
    _, blocks = build_card(
        conversation(
            assignee=ANA, tags=[Tag(name="pricing"), Tag(name="vip")], campaign=Campaign(name="Spring")
        ),
        ai_available=True,
    )
    rendered = json.dumps(valid_blocks(blocks))
    for shown in ("<@U0ANA>", "pricing", "vip", "Spring", "CTO", "Acme", "Jane Doe"):
        assert shown in rendered
    select = next(
        e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == "users_select"
    )
    assert select["action_id"] == ids.ASSIGN and select["initial_user"] == "U0ANA"


def test_unassigned_untagged_card_says_so():
    text, blocks = build_card(conversation(), ai_available=True)
    rendered = json.dumps(valid_blocks(blocks), ensure_ascii=False)
    assert "Unassigned" in text and "Unassigned" in rendered and "No tags" in rendered and "—" in rendered
    select = next(
        e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == "users_select"
    )
    assert "initial_user" not in select and select["placeholder"]["text"] == "Assign…"


def test_the_card_links_the_leads_other_threads_by_channel_and_stays_valid_with_every_field():
    others = [
        OtherConversation(i, channel, Status.OPEN, "C0LEADS", f"17000000{i}.000100", AT)
        for i, channel in enumerate(["email", "linkedin", "whatsapp", "sandbox", "fax"])
    ]
    full = conversation(status=Status.CLOSED)
    full.csat_score = 5
    text, blocks = build_card(full, ai_available=True, elsewhere=others)
    assert "Rated 5/5" in text
    rendered = json.dumps(valid_blocks(blocks), ensure_ascii=False)
    assert "<https://slack.com/archives/C0LEADS/p170000000000100|:email: Email>" in rendered
    assert ":briefcase: LinkedIn>" in rendered and "Fax>" in rendered
    _, bare = build_card(conversation(), ai_available=True)
    assert "*Also*" not in json.dumps(bare)


def test_a_rated_conversation_shows_its_rating_and_an_unrated_one_does_not():
    rated = conversation(status=Status.CLOSED)
    rated.csat_score = 4
    text, blocks = build_card(rated, ai_available=True)
    assert "Rated 4/5" in text and "⭐⭐⭐⭐ 4/5" in json.dumps(valid_blocks(blocks), ensure_ascii=False)
    text, blocks = build_card(conversation(), ai_available=True)
    assert "Rated" not in text and "Satisfaction" not in json.dumps(blocks)


@pytest.mark.parametrize(
    ("channel", "word"),
    [("whatsapp", "WhatsApp"), ("email", "Email"), ("linkedin", "LinkedIn")],
)
def test_card_names_the_channel_in_words(channel: str, word: str):
    text, blocks = build_card(conversation(channel=channel), ai_available=True)
    assert text.startswith(word) and word in json.dumps(valid_blocks(blocks))


@pytest.mark.parametrize(
    ("lead", "shown"),
    [
        (Lead(name="  ", phone="+15550001", email="x@y.z"), "+15550001"),
        (Lead(email="x@y.z"), "x@y.z"),
        (Lead(), "Unknown lead"),
    ],
)
def test_a_lead_without_a_name_is_named_by_phone_then_email(lead: Lead, shown: str):
    text, blocks = build_card(conversation(lead=lead), ai_available=True)
    assert shown in text and shown in json.dumps(blocks)


TAKE, RESUME, MANUAL = ids.TAKE_OVER, ids.RESUME_AI, ids.MANUAL_ONLY
ALWAYS = [ids.EDIT_TAGS, ids.VIEW_LEAD, ids.EDIT_LEAD]


@pytest.mark.parametrize(
    ("status", "mode", "assignee", "expected"),
    [
        (Status.OPEN, AIMode.ACTIVE, None, [TAKE, MANUAL, *ALWAYS, ids.CLOSE]),
        (Status.OPEN, AIMode.ACTIVE, ANA, [TAKE, MANUAL, *ALWAYS, ids.CLOSE]),
        (Status.PENDING, AIMode.PAUSED, ANA, [RESUME, MANUAL, *ALWAYS, ids.CLOSE]),
        (Status.OPEN, AIMode.PAUSED, None, [TAKE, RESUME, MANUAL, *ALWAYS, ids.CLOSE]),
        (Status.OPEN, AIMode.MANUAL, ANA, [RESUME, *ALWAYS, ids.CLOSE]),
        (Status.OPEN, AIMode.MANUAL, None, [TAKE, RESUME, *ALWAYS, ids.CLOSE]),
        (Status.CLOSED, AIMode.MANUAL, ANA, [*ALWAYS, ids.REOPEN]),
        (Status.CLOSED, AIMode.MANUAL, None, [*ALWAYS, ids.REOPEN]),
        (Status.CLOSED, AIMode.PAUSED, ANA, [*ALWAYS, ids.REOPEN]),
        (Status.CLOSED, AIMode.ACTIVE, ANA, [*ALWAYS, ids.REOPEN]),
    ],
)
def test_card_buttons_follow_state(
    status: Status, mode: AIMode, assignee: Member | None, expected: list[str]
):
    _, blocks = build_card(conversation(status=status, ai_mode=mode, assignee=assignee), ai_available=True)
    valid_blocks(blocks)
    assert action_ids(blocks) == [*expected, ids.ASSIGN]


def test_every_card_control_carries_the_conversation_id_and_close_asks_first():
    _, blocks = build_card(conversation(ai_mode=AIMode.ACTIVE), ai_available=True)
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == "button"]
    assert {button["value"] for button in buttons} == {"7"}
    close = next(button for button in buttons if button["action_id"] == ids.CLOSE)
    assert close["confirm"]["confirm"]["text"] == "Close"
    assert len({b.get("block_id") for b in blocks if "block_id" in b}) == 2  # block ids unique


def test_fingerprint_changes_with_state_and_not_otherwise():
    base = fingerprint(conversation())
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert base == fingerprint(conversation())  # a fresh, equal object: same card
    changed = [
        conversation(status=Status.PENDING),
        conversation(ai_mode=AIMode.ACTIVE),
        conversation(assignee=ANA),
        conversation(tags=[Tag(name="vip")]),
        conversation(campaign=Campaign(name="Q4")),
        conversation(lead=Lead(name="Jane Roe", company="Acme", title="CTO")),
        conversation(unread_count=4),
        conversation(last_activity_at=AT.replace(minute=31)),
    ]
    fingerprints = {fingerprint(c) for c in changed}
    assert base not in fingerprints and len(fingerprints) == len(changed)
    # What the card does not show does not force an update: last activity shows to the minute.
    assert base == fingerprint(conversation(last_activity_at=AT.replace(second=59, microsecond=5)))
    assert base == fingerprint(conversation(version=9, waiting_since=datetime.now(UTC)))


def test_huge_lead_strings_and_many_tags_stay_within_block_kit_limits():
    lead = Lead(name="N&" * 5000, company="<" * 5000, title="T" * 5000)
    tags = [Tag(name=f"tag-{i:03}-" + "&" * 50) for i in range(200)]
    text, blocks = build_card(
        conversation(lead=lead, tags=tags, campaign=Campaign(name=">" * 5000)), ai_available=True
    )
    valid_blocks(blocks)
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert all(len(f) <= 2000 for f in fields) and len(blocks[0]["text"]["text"]) <= 3000
    assert re.search(r"\+\d+ more", next(f for f in fields if f.startswith("*Tags*")))
    assert len(text) < 3000


# --- lead text is inert everywhere ----------------------------------------------------------------------


def test_hostile_lead_text_is_inert_everywhere():
    lead = Lead(
        name=HOSTILE,
        company=HOSTILE,
        title=HOSTILE,
        email=HOSTILE,
        phone=HOSTILE,
        profile_url=HOSTILE,
        created_at=AT,
        campaign=Campaign(name=HOSTILE),
    )
    hostile = conversation(lead=lead, tags=[Tag(name=HOSTILE)], campaign=Campaign(name=HOSTILE))
    card_text, card_blocks = build_card(hostile, ai_available=True)
    entry_text, entry_blocks = build_thread_entry(make_message(text=HOSTILE, kind="image"), HOSTILE)
    failure_text, failure_blocks = build_delivery_failure(
        make_message(text=HOSTILE, author=Author.MEMBER), HOSTILE
    )
    lead_modal = build_lead_modal(lead_view(hostile), workspace_url=None)
    tags_modal_mrkdwn = [b for b in build_tags_modal(hostile, [])["blocks"] if b["type"] == "context"]
    for blocks in (card_blocks, entry_blocks, failure_blocks):
        valid_blocks(blocks)
    valid_view(lead_modal)
    for rendered in (
        card_text,
        json.dumps(card_blocks),
        entry_text,
        json.dumps(entry_blocks),
        failure_text,
        json.dumps(failure_blocks),
        json.dumps(lead_modal),
        json.dumps(tags_modal_mrkdwn),
    ):
        assert "<!channel>" not in rendered and "<@U999>" not in rendered
        assert HOSTILE_ESCAPED in rendered
    # name, title, company, email, phone, tag, campaign
    assert json.dumps(card_blocks).count(HOSTILE_ESCAPED) >= 7
    assert json.dumps(lead_modal).count(HOSTILE_ESCAPED) >= 8  # and the profile, the lead's campaign
    edit = build_edit_lead_modal(hostile)
    valid_view(edit)
    # Inputs are plain text, never read as markup: they hold the value to edit exactly as stored.
    inputs = [b["element"]["initial_value"] for b in edit["blocks"] if b["type"] == "input"]
    assert inputs == [HOSTILE] * 6
    assert "<!channel>" not in json.dumps([b for b in edit["blocks"] if b["type"] != "input"])


# --- thread entries -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("author", "member", "sender"),
    [
        (Author.LEAD, None, "Jane Doe"),
        (Author.AI, None, "AI"),
        (Author.MEMBER, ANA, "Ana"),
        (Author.MEMBER, None, "Teammate (sent from WhatsApp)"),  # written in the provider's own app
        (Author.SYSTEM, None, "Threadline"),
    ],
)
def test_thread_entry_shows_sender_channel_and_time(author: Author, member: Member | None, sender: str):
    text, blocks = build_thread_entry(make_message(author=author, member=member, text="hello"), "Jane Doe")
    valid_blocks(blocks)
    assert text == f"{sender}: hello"
    sender = sender.removesuffix(" (sent from WhatsApp)")
    about = blocks[0]["elements"][0]["text"]
    assert blocks[0]["type"] == "context" and f"*{sender}*" in about and "WhatsApp" in about
    assert f"<!date^{int(AT.timestamp())}^" in about and "|2026-11-25 09:30 UTC>" in about
    assert sections(blocks) == ["hello"]


def test_thread_entry_time_reads_naive_datetimes_as_utc_and_survives_none():
    naive = build_thread_entry(make_message(created_at=AT.replace(tzinfo=None)), "Jane")[1]
    assert f"<!date^{int(AT.timestamp())}^" in naive[0]["elements"][0]["text"]
    unstored = build_thread_entry(make_message(created_at=None), "Jane")[1]
    assert "<!date^" not in unstored[0]["elements"][0]["text"]
    valid_blocks(unstored)


def test_ten_thousand_characters_split_into_sections_of_at_most_3000():
    message = make_message(text="word " * 2000)
    text, blocks = build_thread_entry(message, "Jane")
    valid_blocks(blocks)
    parts = sections(blocks)
    assert len(parts) == 4 and all(len(part) <= 3000 for part in parts)
    assert " ".join(parts).split() == message.text.split()  # cut between words, nothing lost
    assert text == "Jane: " + ("word " * 40) + "…"


def test_splitting_never_cuts_an_escaped_character_in_half():
    message = make_message(text="&<>" * 4000)
    parts = sections(valid_blocks(build_thread_entry(message, "Jane")[1]))
    assert len(parts) > 1 and all(len(part) <= 3000 for part in parts)
    assert all(re.fullmatch(r"(&amp;|&lt;|&gt;)+", part) for part in parts)
    assert unescape("".join(parts)) == message.text


def test_a_huge_message_is_truncated_within_fifty_blocks_saying_how_much():
    message = make_message(text="x" * 200_000)
    blocks = valid_blocks(build_thread_entry(message, "Jane")[1])
    assert len(blocks) == 50
    shown = sum(len(part) for part in sections(blocks)[:-1])
    assert sections(blocks)[-1] == f"_… (truncated, {200_000 - shown} more characters)_"


@pytest.mark.parametrize(
    ("kind", "text", "body"),
    [
        ("image", "[image] see <this>", "[image] see &lt;this&gt;"),
        ("reaction", "👍", "reacted 👍"),  # a reaction Slack could not show on its entry
        ("reaction", "", "took back their reaction"),
        ("location", "", "[location]"),
        ("text", "   ", "(empty message)"),
    ],
)
def test_non_text_messages_show_what_arrived(kind: str, text: str, body: str):
    blocks = valid_blocks(build_thread_entry(make_message(kind=kind, text=text), "Jane")[1])
    assert sections(blocks) == [body]


# --- delivery -------------------------------------------------------------------------------------------


def test_delivery_failure_says_not_delivered_why_and_offers_retry():
    message = make_message(id=9, author=Author.MEMBER, member=ANA, text="See you\nMonday")
    text, blocks = build_delivery_failure(message, "More than 24 hours <since> the last message")
    valid_blocks(blocks)
    assert "Not delivered" in text and "24 hours &lt;since&gt;" in text
    assert "> See you Monday" in blocks[0]["text"]["text"]
    assert action_ids(blocks) == [ids.RETRY_DELIVERY] and blocks[1]["elements"][0]["value"] == "9"


def test_delivery_failure_with_an_endless_reason_stays_valid():
    _, blocks = build_delivery_failure(make_message(author=Author.MEMBER, text="x" * 5000), "&" * 10_000)
    valid_blocks(blocks)


def test_delivery_reactions_are_standard_emoji_one_per_status():
    names = {status: delivery_reaction(status) for status in DeliveryStatus}
    assert names == {
        DeliveryStatus.QUEUED: "hourglass_flowing_sand",
        DeliveryStatus.SENDING: "hourglass_flowing_sand",
        DeliveryStatus.SENT: "white_check_mark",
        DeliveryStatus.DELIVERED: "inbox_tray",
        DeliveryStatus.READ: "eyes",
        DeliveryStatus.FAILED: "warning",
    }
    assert delivery_reaction(None) is None


# --- modals ---------------------------------------------------------------------------------------------


def tags_select(view: dict[str, Any]) -> dict[str, Any] | None:
    block = next((b for b in view["blocks"] if b.get("block_id") == ids.EXISTING_TAGS_BLOCK), None)
    return None if block is None else block["element"]


def test_tags_modal_preselects_current_tags_among_all():
    view = build_tags_modal(conversation(tags=[Tag(name="vip")]), ["pricing", "vip"])
    valid_view(view)
    assert view["callback_id"] == ids.TAGS_MODAL and view["private_metadata"] == "7"
    assert view["submit"]["text"] == "Save" and view["close"]["text"] == "Cancel"
    select = tags_select(view)
    assert select is not None and select["type"] == "multi_static_select"
    assert [o["value"] for o in select["options"]] == ["vip", "pricing"]
    assert [o["value"] for o in select["initial_options"]] == ["vip"]
    new = next(b for b in view["blocks"] if b.get("block_id") == ids.NEW_TAGS_BLOCK)
    assert new["optional"] and new["element"]["action_id"] == ids.NEW_TAGS_ACTION
    assert new["label"]["text"] == "New tags (comma-separated)"


def test_tags_modal_without_any_tags_offers_only_the_text_input():
    view = build_tags_modal(conversation(), [])
    valid_view(view)
    assert tags_select(view) is None
    assert ids.NEW_TAGS_BLOCK in json.dumps(view)


def test_tags_modal_offers_at_most_100_options_and_keeps_the_current_ones():
    view = build_tags_modal(conversation(tags=[Tag(name="zzz")]), [f"t{i:03}" for i in range(150)])
    valid_view(view)
    select = tags_select(view)
    assert select is not None and len(select["options"]) == 100
    assert [o["value"] for o in select["initial_options"]] == ["zzz"]


@pytest.mark.parametrize(
    ("values", "names"),
    [
        (
            {
                ids.EXISTING_TAGS_BLOCK: {ids.EXISTING_TAGS_ACTION: {"selected_options": [{"value": "vip"}]}},
                ids.NEW_TAGS_BLOCK: {ids.NEW_TAGS_ACTION: {"value": "renewal,  q4 , vip,,\nnext year"}},
            },
            ["vip", "renewal", "q4", "next year"],
        ),
        ({ids.NEW_TAGS_BLOCK: {ids.NEW_TAGS_ACTION: {"value": None}}}, []),
        ({ids.EXISTING_TAGS_BLOCK: {ids.EXISTING_TAGS_ACTION: {"selected_options": []}}}, []),
        ({}, []),
    ],
)
def test_parse_tags_submission(values: dict[str, Any], names: list[str]):
    assert parse_tags_submission(values) == names


def test_lead_modal_shows_contact_campaign_numbers_and_other_threads():
    lead = Lead(
        name="Jane Doe",
        email="jane@acme.test",
        phone="+15551234567",
        company="Acme",
        title="CTO",
        profile_url="https://linkedin.test/in/jane?a=1&b=2",
        score=87,
        created_at=AT,
        campaign=Campaign(name="Autumn"),
    )
    other = OtherConversation(
        id=8,
        channel="email",
        status=Status.CLOSED,
        slack_channel="C0MAIL",
        slack_thread_ts="1700000000.000100",
        last_activity_at=AT,
    )
    view = build_lead_modal(
        lead_view(
            conversation(lead=lead, campaign=Campaign(name="Spring")),
            from_lead=5,
            to_lead=3,
            notes=2,
            conversations=2,
            first_contact=AT,
            last_contact=AT.replace(day=26),
            others=[other],
            hidden=1,
        ),
        workspace_url="https://acme.slack.com/",
    )
    valid_view(view)
    assert view["callback_id"] == ids.LEAD_MODAL and view["private_metadata"] == "7"
    rendered = json.dumps(view)
    for shown in (
        "Jane Doe",
        "jane@acme.test",
        "+15551234567",
        "Acme",
        "CTO",
        "WhatsApp",
        "*Campaign of this conversation*\\nSpring",
        "*Lead's campaign*\\nAutumn",
        "*Score*\\n87",
        "2026-11-25",
        "*Messages from the lead*\\n5",
        "*Messages to the lead*\\n3",
        "*Internal notes*\\n2",
        "*Conversations*\\n2",
        f"<!date^{int(AT.timestamp())}^",
        "Email \\u00b7 Closed",
        "<https://acme.slack.com/archives/C0MAIL/p1700000000000100|Open the thread>",
        "1 more in channels you are not in",
    ):
        assert shown in rendered, shown
    assert "https://linkedin.test/in/jane?a=1&amp;b=2" in rendered


def test_lead_modal_says_what_is_unknown_and_links_by_channel_without_a_workspace_url():
    other = OtherConversation(
        id=8,
        channel="email",
        status=Status.OPEN,
        slack_channel="C0MAIL",
        slack_thread_ts=None,
        last_activity_at=AT,
    )
    sparse = build_lead_modal(
        lead_view(conversation(lead=Lead(phone="+1555")), others=[other], more_others=4), workspace_url=None
    )
    rendered = json.dumps(valid_view(sparse), ensure_ascii=False)
    assert "*Email*\\n—" in rendered and "+1555" in rendered and "*First contact*\\n—" in rendered
    assert "in <#C0MAIL>" in rendered and "…and 4 more" in rendered
    alone = json.dumps(build_lead_modal(lead_view(conversation()), workspace_url=None))
    assert "this is the lead's only conversation" in alone


def test_edit_lead_modal_starts_with_what_is_known_and_warns_the_thread_stays():
    view = build_edit_lead_modal(conversation(campaign=Campaign(name="Spring")))
    valid_view(view)
    assert view["callback_id"] == ids.LEAD_EDIT_MODAL and view["private_metadata"] == "7"
    assert view["submit"]["text"] == "Save"
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert list(inputs) == list(ids.LEAD_FIELDS)
    initial = {field: b["element"].get("initial_value") for field, b in inputs.items()}
    assert initial == {
        "name": "Jane Doe",
        "company": "Acme",
        "title": "CTO",
        "email": None,
        "phone": "+15551234567",
        "campaign": "Spring",
    }
    assert all(b["optional"] and b["element"]["action_id"] == ids.LEAD_FIELD_ACTION for b in inputs.values())
    assert [inputs[f]["element"]["max_length"] for f in ("name", "email", "phone")] == [200, 320, 32]
    assert "does not move this thread" in inputs["campaign"]["hint"]["text"]


def test_parse_lead_edit_reads_each_field_and_refuses_a_foreign_shape():
    values = {
        "name": {ids.LEAD_FIELD_ACTION: {"type": "plain_text_input", "value": "Jane Roe"}},
        "email": {ids.LEAD_FIELD_ACTION: {"type": "plain_text_input", "value": None}},
        "campaign": {ids.LEAD_FIELD_ACTION: {"type": "plain_text_input", "value": "spring"}},
    }
    assert parse_lead_edit(values) == LeadEdit(name="Jane Roe", campaign="spring")
    with pytest.raises(ValueError, match="phone"):
        parse_lead_edit({"phone": {ids.LEAD_FIELD_ACTION: {"value": ["+1"]}}})


def test_the_card_shows_contact_unread_last_activity_and_only_an_https_picture():
    lead = Lead(
        name="Jane Doe",
        email="jane@acme.test",
        phone="+15551234567",
        avatar_url="https://cdn.test/jane.png",
    )
    _, blocks = build_card(conversation(lead=lead, unread_count=3), ai_available=True)
    valid_blocks(blocks)
    assert "jane@acme.test · +15551234567" in blocks[0]["text"]["text"]
    picture = blocks[0]["accessory"]
    assert picture == {
        "type": "image",
        "image_url": "https://cdn.test/jane.png",
        "alt_text": "Picture of Jane Doe",
    }
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert "*Unread*\n3 new from the lead" in fields
    stamp = int(AT.timestamp())
    assert f"*Last activity*\n<!date^{stamp}^{{date_short_pretty}} {{time}}|2026-11-25 09:30 UTC>" in fields
    for url in ("http://cdn.test/jane.png", "javascript:alert(1)", "https://cdn.test/a b.png", None):
        _, blocks = build_card(conversation(lead=Lead(name="J", avatar_url=url)), ai_available=True)
        assert "accessory" not in blocks[0]
    quiet = build_card(conversation(), ai_available=True)[1][1]["fields"]
    assert "*Unread*\nNone" in [f["text"] for f in quiet]


HUGE = 10_000


def huge_conversation(tag_count: int = 500) -> Conversation:
    lead = Lead(
        name="N&<" * (HUGE // 3),
        company="C<" * (HUGE // 2),
        title="T" * HUGE,
        email="e" * HUGE + "@x.test",
        phone="9" * HUGE,
        profile_url="https://p.test/" + "p" * HUGE,
        avatar_url="https://a.test/" + "a" * 2900,
        created_at=AT,
        campaign=Campaign(name=">" * HUGE),
    )
    tags = [Tag(name=f"tag-{i:03}-" + "&" * 50) for i in range(tag_count)]
    return conversation(lead=lead, tags=tags, campaign=Campaign(name="&" * HUGE), unread_count=10**6)


def test_every_surface_stays_within_block_kit_limits_with_huge_leads_and_500_tags():
    huge = huge_conversation()
    text, blocks = build_card(huge, ai_available=True)
    valid_blocks(blocks)
    assert len(text) < 3000 and re.search(r"\+\d+ more", json.dumps(blocks))
    others = [
        OtherConversation(i, "email", Status.OPEN, "C" + "9" * 20, "1700000000.000100", AT) for i in range(10)
    ]
    view = lead_view(huge, others=others, more_others=10**6, hidden=10**6, from_lead=10**9)
    valid_view(build_lead_modal(view, workspace_url="https://" + "w" * 500 + ".slack.com/"))
    edit = valid_view(build_edit_lead_modal(huge))
    inputs = [b["element"] for b in edit["blocks"] if b["type"] == "input"]
    assert all(len(e.get("initial_value", "")) <= e["max_length"] for e in inputs) and len(inputs) == 6
    known_tags = [f"known-{i:03}-" + "x" * 100 for i in range(500)]
    valid_view(build_tags_modal(huge, known_tags))
    entry_text, entry_blocks = build_thread_entry(make_message(text="&" * HUGE), huge.lead.name or "")
    valid_blocks(entry_blocks)
    assert len(entry_text) < 3000


def test_without_an_agent_the_card_never_offers_the_ai():
    for mode in AIMode:
        _, blocks = build_card(conversation(ai_mode=mode), ai_available=False)
        assert ids.RESUME_AI not in action_ids(blocks)
