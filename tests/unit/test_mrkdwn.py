"""Slack markup both ways: lead text inert in Slack, rep text readable outside it."""

from __future__ import annotations

import pytest

from bot.mrkdwn import escape, escape_clipped, mentioned_user_ids, to_plain

NAMES = {"U0ANA": "Ana Lima", "U0BOB": "Bob"}


def test_escape_only_the_three_characters_slack_reads():
    assert (
        escape("<!channel> & <@U1> *bold* \"q\" 'a'") == "&lt;!channel&gt; &amp; &lt;@U1&gt; *bold* \"q\" 'a'"
    )
    assert escape("&amp;") == "&amp;amp;"  # text that looks escaped is still the lead's text


@pytest.mark.parametrize("limit", [1, 4, 5, 6, 9, 10, 11, 30])
def test_escape_clipped_never_splits_an_entity(limit: int):
    clipped = escape_clipped("a&b<c>d" * 3, limit)
    assert len(clipped) <= limit and clipped.endswith("…")
    assert "&" not in clipped.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")


def test_escape_clipped_keeps_what_fits():
    assert escape_clipped("a&b", 7) == "a&amp;b"
    assert escape_clipped("abcdef", 4) == "abc…"


@pytest.mark.parametrize(
    ("typed", "plain"),
    [
        ("Hi &amp; welcome &lt;3 &gt;", "Hi & welcome <3 >"),
        ("see <https://x.io/p?a=1&amp;b=2|pricing>", "see pricing (https://x.io/p?a=1&b=2)"),
        ("see <https://x.io>", "see https://x.io"),
        ("see <https://x.io|https://x.io>", "see https://x.io"),
        ("see <http://acme.com|acme.com>", "see acme.com"),  # Slack's auto-link of a bare domain
        ("ask <@U0ANA>", "ask @Ana Lima"),
        ("ask <@U0ANA|ana>", "ask @Ana Lima"),  # our name wins over Slack's label
        ("ask <@U0ZED|zed>", "ask @zed"),
        ("ask <@U0ZED>", "ask @someone"),
        ("in <#C123|general>", "in #general"),
        ("<!here> hi", "@here hi"),
        ("<!channel> and <!everyone>", "@channel and @everyone"),
        ("<!subteam^S1|@sales> hi", "@sales hi"),
        ("mail <mailto:a@b.co|a@b.co>", "mail a@b.co"),
        ("mail <mailto:a@b.co|Ana>", "mail Ana (a@b.co)"),
        ("call <tel:+15551234|+1 555 1234>", "call +1 555 1234 (+15551234)"),
        ("on <!date^1700000000^{date}|Nov 14>", "on Nov 14"),
        ("*bold* _it_ ~strike~", "*bold* _it_ ~strike~"),
        ("literal &amp;lt;", "literal &lt;"),
        ("no markup at all", "no markup at all"),
    ],
)
def test_to_plain(typed: str, plain: str):
    assert to_plain(typed, NAMES) == plain


@pytest.mark.parametrize("text", ["<!channel> & <@U999>", "a &amp; b", "<https://x|y>", "x < y > z &"])
def test_escaped_text_comes_back_unchanged(text: str):
    assert to_plain(escape(text), NAMES) == text


def test_mentioned_user_ids_in_order_once():
    assert mentioned_user_ids("<@U0BOB> and <@U0ANA|ana> and <@U0BOB> and <!here>") == ["U0BOB", "U0ANA"]
    assert mentioned_user_ids("nobody") == []
