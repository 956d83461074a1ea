"""What a rep sees of WhatsApp's extras in the thread: replies quoting what they answer, reactions that
could not go on their entry, the closed-window notice with its template buttons, and the emoji names
reactions use. Pure builders, checked against Block Kit's limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.blocks import ids
from bot.blocks.thread import MAX_BLOCKS, Quote, build_delivery_failure, build_thread_entry
from bot.emoji_names import slack_emoji_name
from bot.payloads import BadPayload, template_choice
from core.errors import NEEDS_TEMPLATE
from core.models import Author, Direction, Member, Message
from core.ports import Template
from tests.unit.test_blocks import AT, valid_blocks

ANA = Member(id=3, slack_user_id="U0ANA", name="Ana")
TEMPLATES = (Template("follow_up", "en_US"), Template("reminder", "pt_BR"))


def message(**overrides: Any) -> Message:
    values: dict[str, Any] = {
        "id": 9,
        "channel": "whatsapp",
        "direction": Direction.INBOUND,
        "author": Author.LEAD,
        "kind": "text",
        "text": "hi",
        "attachments": [],
        "created_at": AT,
        "provider_sent_at": AT,
    }
    values.update(overrides)
    return Message(**values)


def rep_message(**overrides: Any) -> Message:
    return message(direction=Direction.OUTBOUND, author=Author.MEMBER, member=ANA, member_id=3, **overrides)


def contexts(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["elements"][0]["text"] for b in blocks if b["type"] == "context"]


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


# --- replies and reactions ------------------------------------------------------------------------------


def test_a_reply_quotes_the_entry_it_answers_escaped_and_short():
    quote = Quote("Ana <@U1>", "Our price is " + "very " * 100 + "fair & <!here>")
    _, blocks = build_thread_entry(message(text="Sounds good"), "Jane", quote)
    valid_blocks(blocks)
    line = contexts(blocks)[1]
    assert line.startswith("↪ replying to *Ana &lt;@U1&gt;*: “Our price is very")
    assert "<!here>" not in line and "<@U1>" not in line and len(line) < 250


def test_a_reply_to_a_message_we_do_not_have_says_so():
    _, blocks = build_thread_entry(message(text="yes"), "Jane", Quote())
    assert contexts(blocks)[1] == "↪ replying to an earlier message Threadline does not have"


def test_a_reaction_shown_as_a_line_says_what_and_to_what():
    reaction = message(kind="reaction", text="🫶", reply_to_provider_id="wamid.X")
    text, blocks = build_thread_entry(reaction, "Jane", Quote("Ana", "See you Monday", reaction=True))
    valid_blocks(blocks)
    assert text == "Jane: reacted 🫶"
    assert contexts(blocks)[1] == "↪ to *Ana*: “See you Monday”"
    _, taken_back = build_thread_entry(message(kind="reaction", text=""), "Jane", Quote(reaction=True))
    assert contexts(taken_back)[1] == "↪ to an earlier message Threadline does not have"
    assert taken_back[-1]["text"]["text"] == "took back their reaction"


def test_a_quoted_huge_message_still_fits_fifty_blocks():
    _, blocks = build_thread_entry(message(text="x" * 200_000), "Jane", Quote("Ana", "y" * 10_000))
    valid_blocks(blocks)
    assert len(blocks) == MAX_BLOCKS and blocks[-1]["text"]["text"].startswith("_… (truncated")


@pytest.mark.parametrize(
    ("emoji", "name"),
    [
        ("👍", "thumbsup"),
        ("👍🏽", "thumbsup::skin-tone-4"),
        ("🙏🏿", "pray::skin-tone-6"),
        ("❤️", "heart"),
        ("❤", "heart"),
        ("😂", "joy"),
        ("🔥", "fire"),
        ("🎉", "tada"),
        ("🇵🇹", "flag-pt"),
        ("hi", None),
        ("👍👍", None),
        ("", None),
        ("\ufe0f", None),
    ],
)
def test_a_leads_emoji_becomes_the_name_slack_reactions_take(emoji: str, name: str | None):
    assert slack_emoji_name(emoji) == name


# --- the 24-hour window ---------------------------------------------------------------------------------


def test_a_closed_window_offers_each_template_and_still_retry():
    failed = rep_message(text="Still there?", delivery_error_code=NEEDS_TEMPLATE)
    text, blocks = build_delivery_failure(failed, "More than 24 hours since the lead last wrote.", TEMPLATES)
    valid_blocks(blocks)
    assert text.startswith("Not sent: the lead's WhatsApp reply window is closed.")
    offered = buttons(blocks)
    assert [b["text"]["text"] for b in offered] == [
        "Send follow_up (en_US)",
        "Send reminder (pt_BR)",
        "Retry",
    ]
    assert [b["action_id"] for b in offered] == [ids.SEND_TEMPLATE, ids.SEND_TEMPLATE, ids.RETRY_DELIVERY]
    assert template_choice(offered[1]["value"]) == (9, Template("reminder", "pt_BR"))


def test_without_templates_the_notice_says_what_the_channel_said_and_offers_retry():
    failed = rep_message(delivery_error_code=NEEDS_TEMPLATE)
    text, blocks = build_delivery_failure(failed, "None is configured here: set WHATSAPP_TEMPLATES")
    valid_blocks(blocks)
    assert "set WHATSAPP_TEMPLATES" in text
    assert [b["action_id"] for b in buttons(blocks)] == [ids.RETRY_DELIVERY]


def test_templates_are_offered_only_when_the_window_is_the_reason():
    _, blocks = build_delivery_failure(rep_message(delivery_error_code="131026"), "undeliverable", TEMPLATES)
    assert [b["action_id"] for b in buttons(blocks)] == [ids.RETRY_DELIVERY]


def test_many_long_templates_stay_inside_slacks_limits():
    many = tuple(Template("t" * 500 + str(n), "en_US") for n in range(150))
    _, blocks = build_delivery_failure(rep_message(delivery_error_code=NEEDS_TEMPLATE), "closed", many)
    valid_blocks(blocks)
    offered = buttons(blocks)
    assert len(offered) == 101 and all(len(b["text"]["text"]) <= 75 for b in offered)
    assert all(len(b["value"]) <= 2000 for b in offered)
    assert len({b["block_id"] for b in blocks if b["type"] == "actions"}) == 5


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "not json",
        "[1, 2]",
        json.dumps({"m": 9, "n": "", "l": "en"}),
        json.dumps({"m": 9, "n": "x"}),
        json.dumps({"m": "9", "n": "x", "l": "en"}),
        json.dumps({"m": -1, "n": "x", "l": "en"}),
        json.dumps({"m": 2**70, "n": "x", "l": "en"}),
    ],
)
def test_a_forged_template_button_is_a_bad_payload(value: str | None):
    with pytest.raises(BadPayload):
        template_choice(value)
