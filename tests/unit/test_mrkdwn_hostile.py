"""Whatever a lead writes, `escape` and `escape_clipped` make it inert in Slack mrkdwn: no `<` or `>`
left for Slack to read as a mention, a channel-wide ping or a link, and no `&` that is not one of the
three entities Slack documents — whatever the text and wherever it is cut. (The end-to-end scan of
every surface is tests/e2e/test_no_pings.py.)"""

from __future__ import annotations

import os
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.mrkdwn import escape, escape_clipped, mentioned_user_ids, to_plain, unescape

EXAMPLES = int(os.environ.get("THREADLINE_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES * 4, deadline=None, database=None)  # pure and fast: more cases
MARKUP = st.sampled_from(
    [
        "<!channel>",
        "<!here>",
        "<!here|here>",
        "<!everyone>",
        "<@U0ANA>",
        "<@W0ANA|ana>",
        "<!subteam^S1|@sales>",
        "<#C0LEADS>",
        "<https://evil.example|your bank>",
        "<mailto:a@b.c|x>",
        "<!date^1700000000^{date}|x>",
        "&lt;!channel&gt;",
        "&amp;",
        "&",
        "<",
        ">",
        "@here",
        "*bold*",
        "`code`",
        "\u200b<!channel>",
    ]
)
LEAD_TEXT = st.lists(MARKUP | st.text(max_size=10), max_size=12).map("".join)
_STRAY_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")


def inert(shown: str) -> bool:
    return "<" not in shown and ">" not in shown and not _STRAY_AMPERSAND.search(shown)


@FUZZ
@given(text=LEAD_TEXT)
def test_escaped_lead_text_is_inert_and_reads_back_as_typed(text: str):
    shown = escape(text)
    assert inert(shown)
    assert mentioned_user_ids(shown) == []
    assert unescape(shown) == text
    assert to_plain(shown, {}) == text  # what a rep quoting it would send back: the lead's own words


@FUZZ
@given(text=LEAD_TEXT, limit=st.integers(min_value=1, max_value=120))
def test_clipped_lead_text_is_inert_wherever_it_is_cut(text: str, limit: int):
    shown = escape_clipped(text, limit)
    assert inert(shown) and len(shown) <= limit
    kept = shown.removesuffix("…")
    assert text.startswith(unescape(kept))  # a prefix of what the lead wrote, never a half entity
