"""Pure Block Kit builders: valid Block Kit, state in words, lead text inert."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.blocks import ids
from bot.blocks.card import build_card, card_fingerprint
from bot.blocks.modals import build_lead_modal, build_tags_modal, parse_tags_submission
from bot.blocks.thread import build_delivery_failure, build_thread_entry, delivery_reaction
from core.models import (
    AIMode,
    Author,
    Campaign,
    Channel,
    Conversation,
    DeliveryStatus,
    Direction,
    Lead,
    Member,
    Message,
    Status,
    Tag,
)

HOSTILE = "<!channel> & <@U999>"
AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def valid_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert len(blocks) <= 50
    parsed = [Block.parse(block) for block in blocks]
    assert all(type(block) is not Block for block in parsed), "unknown block type"
    return [block.to_dict() for block in parsed]  # raises on any Block Kit limit


def conversation(**overrides: Any) -> Conversation:
    values: dict[str, Any] = {
        "id": 7,
        "lead": Lead(name="Jane Doe", company="Acme", title="CTO", phone="+15551234567", created_at=AT),
        "channel": Channel.WHATSAPP,
        "status": Status.OPEN,
        "ai_mode": AIMode.MANUAL,
        "assignee": None,
        "campaign": None,
        "tags": [],
    }
    values.update(overrides)
    return Conversation(**values)


def make_message(
    *, id: int, text: str, author: Author = Author.LEAD, member: Member | None = None
) -> Message:
    direction = Direction.INBOUND if author == Author.LEAD else Direction.OUTBOUND
    return Message(
        id=id,
        channel=Channel.WHATSAPP,
        direction=direction,
        author=author,
        member=member,
        text=text,
        kind="text",
        created_at=AT,
    )


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.parametrize(
    ("status", "mode", "words"),
    [
        (Status.OPEN, AIMode.ACTIVE, ["Open", "AI: active"]),
        (Status.PENDING, AIMode.PAUSED, ["Pending", "AI: paused"]),
        (Status.CLOSED, AIMode.MANUAL, ["Closed", "AI: manual"]),
    ],
)
def test_card_says_status_and_ai_mode_in_words(status: Status, mode: AIMode, words: list[str]):
    text, blocks = build_card(conversation(status=status, ai_mode=mode))
    rendered = json.dumps(valid_blocks(blocks))
    for word in words:
        assert word in text and word in rendered


def test_card_names_assignee_as_mention_and_lists_tags_and_campaign():
    ana = Member(slack_user_id="U0ANA", name="Ana")
    text, blocks = build_card(
        conversation(
            assignee=ana, tags=[Tag(name="pricing"), Tag(name="vip")], campaign=Campaign(name="Spring")
        )
    )
    rendered = json.dumps(valid_blocks(blocks))
    assert "<@U0ANA>" in rendered and "pricing" in rendered and "vip" in rendered and "Spring" in rendered
    assert "Ana" in text
    select = next(
        e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == "users_select"
    )
    assert select["initial_user"] == "U0ANA"


def test_card_buttons_follow_state():
    assert action_ids(build_card(conversation(ai_mode=AIMode.ACTIVE))[1]) == [
        ids.TAKE_OVER,
        ids.MANUAL_ONLY,
        ids.EDIT_TAGS,
        ids.VIEW_LEAD,
        ids.CLOSE,
        ids.ASSIGN,
    ]
    owned = conversation(ai_mode=AIMode.PAUSED, assignee=Member(slack_user_id="U1", name="A"))
    assert action_ids(build_card(owned)[1]) == [
        ids.RESUME_AI,
        ids.MANUAL_ONLY,
        ids.EDIT_TAGS,
        ids.VIEW_LEAD,
        ids.CLOSE,
        ids.ASSIGN,
    ]
    closed = conversation(status=Status.CLOSED)
    assert action_ids(build_card(closed)[1]) == [ids.EDIT_TAGS, ids.VIEW_LEAD, ids.REOPEN, ids.ASSIGN]


def test_hostile_lead_name_is_inert_everywhere():
    lead = Lead(name=HOSTILE, company=HOSTILE, created_at=AT)
    text, blocks = build_card(conversation(lead=lead))
    message = make_message(id=1, text=HOSTILE)
    entry_text, entry_blocks = build_thread_entry(message, HOSTILE)
    modal = build_lead_modal(conversation(lead=lead))
    for rendered in (text, json.dumps(blocks), entry_text, json.dumps(entry_blocks), json.dumps(modal)):
        assert "<!channel>" not in rendered and "<@U999>" not in rendered
        assert "&lt;!channel&gt; &amp; &lt;@U999&gt;" in rendered


def test_fingerprint_changes_with_state_only():
    first = card_fingerprint(*build_card(conversation()))
    assert first == card_fingerprint(*build_card(conversation()))
    assert first != card_fingerprint(*build_card(conversation(status=Status.PENDING)))


def test_long_message_is_split_into_valid_sections():
    message = make_message(id=2, text="word " * 2000)
    text, blocks = build_thread_entry(message, "Jane")
    valid_blocks(blocks)
    sections = [b for b in blocks if b["type"] == "section"]
    assert len(sections) >= 4 and all(len(s["text"]["text"]) <= 3000 for s in sections)
    assert "".join(s["text"]["text"] for s in sections).split() == message.text.split()
    assert len(text) < 300


def test_huge_message_is_truncated_within_fifty_blocks():
    message = make_message(id=3, text="x" * 200_000)
    blocks = valid_blocks(build_thread_entry(message, "Jane")[1])
    assert len(blocks) == 50 and "truncated" in blocks[-1]["text"]["text"]


def test_thread_entry_shows_sender():
    ana = Member(slack_user_id="U0ANA", name="Ana")
    lead_msg = make_message(id=4, text="hi")
    ai_msg = make_message(id=5, author=Author.AI, text="hello")
    rep_msg = make_message(id=6, author=Author.MEMBER, member=ana, text="yo")
    assert build_thread_entry(lead_msg, "Jane Doe")[0].startswith("Jane Doe:")
    assert build_thread_entry(ai_msg, "Jane Doe")[0].startswith("AI:")
    assert build_thread_entry(rep_msg, "Jane Doe")[0].startswith("Ana:")


def test_delivery_failure_has_reason_and_retry():
    message = make_message(id=9, author=Author.MEMBER, text="hi")
    text, blocks = build_delivery_failure(message, "More than 24 hours <since>")
    valid_blocks(blocks)
    assert "24 hours &lt;since&gt;" in text
    assert action_ids(blocks) == [ids.RETRY_DELIVERY] and blocks[1]["elements"][0]["value"] == "9"


def test_every_status_has_a_distinct_reaction_but_queued_and_sending():
    names = {status: delivery_reaction(status) for status in DeliveryStatus}
    assert names[DeliveryStatus.QUEUED] == names[DeliveryStatus.SENDING]
    assert len({names[s] for s in DeliveryStatus if s != DeliveryStatus.SENDING}) == len(DeliveryStatus) - 1
    assert delivery_reaction(None) is None


def test_tags_modal_is_valid_and_round_trips():
    view = build_tags_modal(conversation(tags=[Tag(name="vip")]), ["pricing", "vip"])
    View(**view).to_dict()
    values = {
        ids.EXISTING_TAGS_BLOCK: {ids.EXISTING_TAGS_ACTION: {"selected_options": [{"value": "vip"}]}},
        ids.NEW_TAGS_BLOCK: {ids.NEW_TAGS_ACTION: {"value": "renewal,  q4 , vip"}},
    }
    assert parse_tags_submission(values) == ["vip", "renewal", "q4"]
    assert ids.EXISTING_TAGS_BLOCK not in json.dumps(build_tags_modal(conversation(), []))  # no empty select
    View(**build_tags_modal(conversation(), [])).to_dict()
    View(**build_lead_modal(conversation())).to_dict()


def test_home_lists_mine_and_unassigned_with_counts():
    from bot.blocks.home import build_home
    from core.queries import HomeSummary

    mine = conversation(unread_count=3, slack_channel="C0LEADS", lead=Lead(name=HOSTILE, created_at=AT))
    view = build_home(HomeSummary(mine=[mine], unassigned=[], mine_open=12, unassigned_open=0))
    View(**view).to_dict()
    rendered = json.dumps(view)
    assert "My open conversations (12)" in rendered and "3 unread" in rendered and "11 more" in rendered
    assert "Unassigned (0)" in rendered and "Nobody is waiting" in rendered
    assert "<!channel>" not in rendered and "<#C0LEADS>" in rendered
