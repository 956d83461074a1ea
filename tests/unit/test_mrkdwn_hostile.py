"""Whatever a lead writes, `escape` and `escape_clipped` make it inert in Slack mrkdwn: no `<` or `>`
left for Slack to read as a mention, a channel-wide ping or a link, and no `&` that is not one of the
three entities Slack documents — whatever the text and wherever it is cut; and no block builder lets
a lead's name, company, tag, text, subject or file name through as markup. (The end-to-end scan of
every surface is tests/e2e/test_no_pings.py.)"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.blocks.card import build_card
from bot.blocks.modals import build_lead_modal
from bot.blocks.notifications import (
    build_ai_handoff,
    build_assignment_dm,
    build_message_dm,
    build_sla_reminder,
)
from bot.blocks.thread import build_delivery_failure, build_full_message_modal, build_thread_entry
from bot.mrkdwn import escape, escape_clipped, mentioned_user_ids, to_plain, unescape
from core.models import Author, Campaign, Lead, Tag
from tests.unit.test_blocks import AT, conversation, lead_view, make_message

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


# --- every builder that shows lead text --------------------------------------------------------------------

# Markup the app itself never writes, so finding one raw in a builder's output means it came from the lead.
LEAD_PINGS = (
    "<!channel>",
    "<!here|x>",
    "<!everyone>",
    "<@U0LEADPING>",
    "<!subteam^S1PING>",
    "<#C0LEADPING>",
    "<https://evil.example|bank>",
)
HOSTILE_FIELD = st.lists(st.sampled_from(LEAD_PINGS) | st.text(max_size=8), min_size=1, max_size=6).map(
    "".join
)


@settings(FUZZ, max_examples=EXAMPLES)
@given(
    name=HOSTILE_FIELD,
    company=HOSTILE_FIELD,
    text=HOSTILE_FIELD,
    subject=HOSTILE_FIELD,
    file_name=HOSTILE_FIELD,
    tag=HOSTILE_FIELD,
)
def test_no_builder_lets_lead_markup_through(
    name: str, company: str, text: str, subject: str, file_name: str, tag: str
):
    lead = Lead(name=name, company=company, title=company, email=f"{name}@x.test", phone=name, created_at=AT)
    hostile = conversation(lead=lead, tags=[Tag(name=tag)], campaign=Campaign(name=tag))
    message = make_message(text=text)
    message.subject = subject
    message.attachments = [{"kind": "document", "name": file_name, "mime_type": "application/pdf"}]
    now = AT + timedelta(hours=30)
    rendered = [
        build_card(hostile, ai_available=True),
        build_thread_entry(message, name),
        build_delivery_failure(make_message(text=text, author=Author.MEMBER), text),
        build_lead_modal(lead_view(hostile), workspace_url=None),
        build_assignment_dm(hostile, None),
        build_message_dm(hostile, text, 2, None),
        build_sla_reminder(hostile, None, AT, now),
        build_ai_handoff(hostile, None, [text, name]),
        build_full_message_modal(name, subject, text),
    ]
    shown = json.dumps(rendered, ensure_ascii=False)
    assert [ping for ping in LEAD_PINGS if ping in shown] == []
