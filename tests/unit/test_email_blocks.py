"""How an email shows in the thread: subject, automatic replies marked, the full mail a click away."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.blocks import ids
from bot.blocks.thread import build_full_message_modal, build_thread_entry
from core.models import Author, Direction, Message
from tests.unit.test_blocks import action_ids, valid_blocks, valid_view

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def email(**fields: object) -> Message:
    values: dict[str, object] = {
        "id": 7,
        "channel": "email",
        "direction": Direction.INBOUND,
        "author": Author.LEAD,
        "text": "Tuesday works.",
        "kind": "text",
        "created_at": AT,
        "subject": "Pricing <@U0ANA>",
        "full_text": "Tuesday works.\n\nOn Monday Ana wrote:\n> Would Tuesday suit you?",
    }
    values.update(fields)
    return Message(**values)


def test_a_trimmed_mail_shows_its_subject_and_a_show_full_email_button():
    _, blocks = build_thread_entry(email(), "Jane Doe")
    valid_blocks(blocks)
    about = blocks[0]["elements"][0]["text"]
    assert "Email" in about and "Pricing &lt;@U0ANA&gt;" in about and "<@U0ANA>" not in about
    assert action_ids(blocks) == [ids.SHOW_FULL_MESSAGE]
    assert blocks[-1]["elements"][0]["value"] == "7"
    assert "Would Tuesday suit you?" not in str(blocks)


def test_a_mail_shown_whole_has_no_button():
    _, blocks = build_thread_entry(email(full_text=None), "Jane Doe")
    assert action_ids(blocks) == []


def test_an_automatic_reply_says_so():
    _, blocks = build_thread_entry(email(kind="auto_reply", text="I am away.", full_text=None), "Jane Doe")
    assert "automatic reply" in blocks[0]["elements"][0]["text"]


def test_a_huge_trimmed_mail_keeps_its_button_inside_slacks_50_blocks():
    _, blocks = build_thread_entry(email(text="word " * 60_000), "Jane Doe")
    valid_blocks(blocks)
    assert len(blocks) <= 50 and action_ids(blocks) == [ids.SHOW_FULL_MESSAGE]


def test_the_full_email_modal_shows_every_line_escaped_and_stays_inside_slacks_limits():
    view = build_full_message_modal("Jane <!channel>", "Re: <b>", "line & more\n> quoted <@U1>")
    valid_view(view)
    shown = str(view["blocks"])
    assert "line &amp; more" in shown and "&gt; quoted &lt;@U1&gt;" in shown and "<!channel>" not in shown
    huge = build_full_message_modal("Jane", None, "x" * 1_000_000)
    valid_view(huge)
    assert len(huge["blocks"]) <= 100 and "truncated" in str(huge["blocks"][-1])
