"""A lead's reactions and replies in the thread: the mirror against a real database and the strict Slack
stand-in. A reaction lands on the entry it reacts to (once, however often the mirror runs), replaces the
lead's earlier one, is taken back, never takes the app's own delivery mark away; a reply quotes what it
answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from core.actions.inbound import do_receive
from core.actions.replies import do_reply
from core.db import Database
from core.models import DeliveryStatus, Message
from tests.conftest import SPECS
from tests.integration.test_mirror import CHANNEL, TOKEN, make_mirror
from tests.integration.test_use_cases import member, whatsapp_text
from tests.standins.slack_api import SlackStandIn


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(SPECS / "slack" / "methods", bot_token=TOKEN) as standin:
        standin.add_channel(CHANNEL, "leads")
        yield standin
        assert standin.violations == []


def lead(db: Database, message_id: str, text: str, **extra: Any) -> int:
    inbound = replace(whatsapp_text(text, message_id=message_id), **extra)
    return db.run(lambda s: do_receive(s, inbound, ai_available=False)).conversation_id


def react(db: Database, message_id: str, emoji: str, to: str) -> int:
    return lead(db, message_id, emoji, kind="reaction", reply_to_provider_id=to)


def thread(slack: SlackStandIn) -> list[dict[str, Any]]:
    [card] = slack.messages(CHANNEL)
    return slack.replies(CHANNEL, card["ts"])


def test_a_reaction_lands_on_its_entry_is_replaced_and_taken_back_once_each(
    db: Database, slack: SlackStandIn
):
    mirror = make_mirror(db, slack)
    conversation_id = lead(db, "wamid.A", "Can you call me?")
    mirror.sync(conversation_id)
    entry = thread(slack)[0]["ts"]

    react(db, "wamid.R1", "👍", "wamid.A")
    mirror.sync(conversation_id)
    mirror.sync(conversation_id)
    assert list(slack.reactions(CHANNEL, entry)) == ["thumbsup"]
    assert len(slack.calls_to("reactions.add")) == 1

    react(db, "wamid.R2", "😂", "wamid.A")
    mirror.sync(conversation_id)
    assert list(slack.reactions(CHANNEL, entry)) == ["joy"]

    react(db, "wamid.R3", "", "wamid.A")
    mirror.sync(conversation_id)
    assert slack.reactions(CHANNEL, entry) == {}
    assert len(thread(slack)) == 1  # no entry of their own


def test_a_leads_eyes_taken_back_leave_the_read_mark(db: Database, slack: SlackStandIn):
    mirror = make_mirror(db, slack)
    conversation_id = lead(db, "wamid.B", "hello")
    mirror.sync(conversation_id)
    ana = member(db)
    typed = slack.post_as_user(CHANNEL, "U0ANA", "Hi!", thread_ts=slack.messages(CHANNEL)[0]["ts"])
    posted = db.run(
        lambda s: do_reply(s, conversation_id, "Hi!", actor=ana, slack_channel=CHANNEL, slack_ts=typed)
    )
    with db.transaction() as session:
        sent = session.get_one(Message, posted.message_id)
        sent.provider_message_id, sent.delivery_status = "wamid.OURS", DeliveryStatus.READ
    mirror.sync(conversation_id)
    assert "eyes" in slack.reactions(CHANNEL, typed)  # read

    react(db, "wamid.R4", "👀", "wamid.OURS")
    react(db, "wamid.R5", "🙏", "wamid.OURS")
    mirror.sync(conversation_id)
    assert set(slack.reactions(CHANNEL, typed)) == {"eyes", "pray"}


def test_a_reaction_to_a_message_we_do_not_have_is_a_short_line(db: Database, slack: SlackStandIn):
    mirror = make_mirror(db, slack)
    conversation_id = lead(db, "wamid.C", "hi")
    react(db, "wamid.R6", "👍", "wamid.NEVER-SEEN")
    mirror.sync(conversation_id)
    line = thread(slack)[1]
    assert line["text"].endswith("reacted 👍")
    assert "an earlier message Threadline does not have" in json.dumps(line["blocks"], ensure_ascii=False)


def test_a_reply_quotes_the_entry_it_answers(db: Database, slack: SlackStandIn):
    mirror = make_mirror(db, slack)
    conversation_id = lead(db, "wamid.D", "Is the <b>Pro</b> plan & support included?")
    lead(db, "wamid.E", "(this one)", reply_to_provider_id="wamid.D")
    mirror.sync(conversation_id)
    quoted = json.dumps(thread(slack)[1]["blocks"], ensure_ascii=False)
    assert "↪ replying to *Jane Doe*: “Is the &lt;b&gt;Pro&lt;/b&gt; plan &amp; support included?”" in quoted


def test_an_emoji_slack_has_no_name_for_becomes_a_line_quoting_the_entry(db: Database, slack: SlackStandIn):
    mirror = make_mirror(db, slack)
    conversation_id = lead(db, "wamid.F", "See you Monday")
    mirror.sync(conversation_id)
    slack.fail_next("reactions.add", "invalid_name")
    react(db, "wamid.R7", "🫶", "wamid.F")
    mirror.sync(conversation_id)
    mirror.sync(conversation_id)
    entries = thread(slack)
    assert len(entries) == 2 and entries[1]["text"].endswith("reacted 🫶")
    assert "↪ to *Jane Doe*: “See you Monday”" in json.dumps(entries[1]["blocks"], ensure_ascii=False)
    assert slack.reactions(CHANNEL, entries[0]["ts"]) == {}
