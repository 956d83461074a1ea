"""Slack markup both ways: lead text inert in Slack, rep text readable outside it."""

from __future__ import annotations

import pytest

from bot.mrkdwn import escape, is_note, mentioned_user_ids, strip_note_prefix, to_plain

NAMES = {"U0ANA": "Ana Lima", "U0BOB": "Bob"}


def test_escape_only_the_three_characters_slack_reads():
    assert escape("<!channel> & <@U1> *bold*") == "&lt;!channel&gt; &amp; &lt;@U1&gt; *bold*"


@pytest.mark.parametrize(
    ("typed", "plain"),
    [
        ("Hi &amp; welcome &lt;3", "Hi & welcome <3"),
        ("see <https://x.io/p?a=1&amp;b=2|pricing>", "see pricing (https://x.io/p?a=1&b=2)"),
        ("see <https://x.io>", "see https://x.io"),
        ("see <https://x.io|https://x.io>", "see https://x.io"),
        ("ask <@U0ANA>", "ask @Ana Lima"),
        ("ask <@U0ZED|zed>", "ask @zed"),
        ("ask <@U0ZED>", "ask @someone"),
        ("in <#C123|general>", "in #general"),
        ("<!here> hi", "@here hi"),
        ("<!subteam^S1|@sales> hi", "@sales hi"),
        ("mail <mailto:a@b.co|a@b.co>", "mail a@b.co"),
        ("*bold* _it_", "*bold* _it_"),
        ("literal &amp;lt;", "literal &lt;"),
    ],
)
def test_to_plain(typed: str, plain: str):
    assert to_plain(typed, NAMES) == plain


def test_notes():
    assert is_note("<@U0BOB> big account")
    assert is_note("  note: call Monday") and is_note("NOTE: x")
    assert not is_note("Thanks <@U0BOB> will call")
    assert not is_note("Noted, thanks")
    assert strip_note_prefix("Note:  call Monday") == "call Monday"


def test_mentioned_user_ids_in_order_once():
    assert mentioned_user_ids("<@U0BOB> and <@U0ANA|ana> and <@U0BOB>") == ["U0BOB", "U0ANA"]
