"""What a rep types in a thread, as Slack sends it: variables filled, edits and deletes, satisfaction
on close, and conversations routed to their own Slack channels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.blocks import ids
from core.actions.satisfaction import RATING_QUESTION
from core.models import Conversation, Message
from tests.e2e.conftest import running_app
from tests.e2e.harness import CHANNEL, AppProcess, block_action, message_event
from tests.e2e.test_card_buttons import card_action
from tests.e2e.test_edges import run_cli
from tests.e2e.test_whatsapp_slack import LEAD, card_of, card_text, click, lead_writes, rep_says, thread
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

RUNTIMES = ("embedded-sqlite",)  # one runtime is enough here: see tests/e2e/conftest.py

ROUTED = "C0WALEADS"


def ephemeral_saying(slack: SlackStandIn, words: str) -> bool:
    return any(words in e.get("text", "") for e in slack.ephemerals)


def sent_texts(graph: GraphStandIn) -> list[str]:
    return [call.body["text"]["body"] for call in graph.sent if call.body.get("type") == "text"]


def slack_edit(
    app: AppProcess, ts: str, thread_ts: str, before: str, after: str, *, channel: str = CHANNEL
) -> None:
    written = {"type": "message", "user": "U0ANA", "ts": ts, "thread_ts": thread_ts}
    event = {
        "type": "message",
        "subtype": "message_changed",
        "channel": channel,
        "hidden": True,
        "ts": f"{ts}9",
        "event_ts": f"{ts}9",
        "message": {**written, "text": after, "edited": {"user": "U0ANA", "ts": f"{ts}9"}},
        "previous_message": {**written, "text": before},
    }
    assert app.slack_event(event).status_code == 200


def slack_delete(app: AppProcess, ts: str, thread_ts: str, text: str) -> None:
    event = {
        "type": "message",
        "subtype": "message_deleted",
        "channel": CHANNEL,
        "hidden": True,
        "ts": f"{ts}8",
        "event_ts": f"{ts}8",
        "deleted_ts": ts,
        "previous_message": {
            "type": "message",
            "user": "U0ANA",
            "text": text,
            "ts": ts,
            "thread_ts": thread_ts,
        },
    }
    assert app.slack_event(event).status_code == 200


def press_retry(app: AppProcess, slack: SlackStandIn, words: str, *, nth: int = 1) -> None:
    """Press Retry on the `nth` failure notice saying `words`, once the mirror has posted it (it
    follows the ⚠️ reaction)."""

    def notices() -> list[dict[str, Any]]:
        return [m for m in thread(slack) if words in m["text"]]

    slack.wait_for(lambda: len(notices()) >= nth)
    notice = notices()[nth - 1]
    retry = next(e for b in notice["blocks"] if b["type"] == "actions" for e in b["elements"])
    payload = block_action(user="U0ANA", card_ts=card_of(slack)["ts"], action=retry)
    payload["container"] = {
        "type": "message",
        "message_ts": notice["ts"],
        "thread_ts": card_of(slack)["ts"],
        "channel_id": CHANNEL,
    }
    assert app.slack_interaction(payload).status_code == 200


def test_variables_are_filled_and_an_unfilled_one_sends_nothing_until_the_rep_fixes_it(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(app, "hello", message_id="wamid.var1", name="Jane Doe")
    slack.wait_for(lambda: len(thread(slack)) == 1)

    rep_says(app, slack, "Hi {first_name}, it's {my_first_name}. Use {{code}} to book.")
    graph.wait_for(lambda: len(graph.sent) == 1)
    with app.database() as db, db.sessions() as session:
        ana = session.query(Message).filter(Message.member_id.is_not(None)).one().member
    assert sent_texts(graph) == [f"Hi Jane, it's {ana.name.split()[0]}. Use {{code}} to book."]

    refused = rep_says(app, slack, "How is {company} doing, {frist_name}?")
    slack.wait_for(lambda: ephemeral_saying(slack, "{company} is empty"))
    slack.wait_for(lambda: "warning" in slack.reactions(CHANNEL, refused))
    assert len(graph.sent) == 1 and app.count(Message) == 2

    slack_edit(
        app,
        refused,
        card_of(slack)["ts"],
        "How is {company} doing, {frist_name}?",
        "How are you, {first_name}?",
    )
    graph.wait_for(lambda: len(graph.sent) == 2)
    assert sent_texts(graph)[1] == "How are you, Jane?"
    assert not any(
        "{" in text for text in sent_texts(graph)[:1] + sent_texts(graph)[1:] if "{code}" not in text
    )


def test_an_unsent_reply_edited_sends_the_edit_and_a_deleted_one_is_never_sent(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(app, "hello", message_id="wamid.ed1")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    card_ts = card_of(slack)["ts"]

    graph.fail_next(131026)  # undeliverable: it waits, failed, for the rep's Retry
    ts = rep_says(app, slack, "Helo Jane")
    slack.wait_for(lambda: "warning" in slack.reactions(CHANNEL, ts))
    slack_edit(app, ts, card_ts, "Helo Jane", "Hello Jane")
    slack.wait_for(lambda: _text_of(app, ts) == "Hello Jane")
    press_retry(app, slack, "Message undeliverable")
    graph.wait_for(lambda: len(graph.sent) == 1)
    assert sent_texts(graph) == ["Hello Jane"]

    graph.fail_next(131026)
    second = rep_says(app, slack, "wrong price: 5$")
    slack.wait_for(lambda: "warning" in slack.reactions(CHANNEL, second))
    slack_delete(app, second, card_ts, "wrong price: 5$")
    slack.wait_for(lambda: ephemeral_saying(slack, "Deleted before it was sent"))
    press_retry(app, slack, "Message undeliverable", nth=2)  # its notice still stands; it must not send
    slack.wait_for(lambda: ephemeral_saying(slack, "deleted in Slack"))
    assert sent_texts(graph) == ["Hello Jane"]

    slack_delete(app, ts, card_ts, "Hello Jane")
    slack.wait_for(lambda: ephemeral_saying(slack, "the lead already has your message"))


def _text_of(app: AppProcess, ts: str) -> str | None:
    with app.database() as db, db.sessions() as session:
        message = session.query(Message).filter(Message.slack_ts == ts).one_or_none()
        return None if message is None else message.text


@pytest.fixture
def csat_app(app_env: dict[str, str], tmp_path: Path) -> Iterator[AppProcess]:
    with running_app({**app_env, "THREADLINE_CSAT": "on"}, tmp_path / "threadline.log") as process:
        yield process


def test_closing_asks_the_lead_for_a_rating_and_the_answer_keeps_it_closed(
    csat_app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    app = csat_app
    lead_writes(app, "Thanks, that's all", message_id="wamid.cs1")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    click(app, slack, card_action(slack, ids.CLOSE))
    graph.wait_for(lambda: len(graph.sent) == 1)
    assert graph.sent[0].body["to"] == LEAD and sent_texts(graph) == [RATING_QUESTION]
    slack.wait_for(lambda: any("rate this conversation" in m["text"] for m in thread(slack)))

    lead_writes(app, "5", message_id="wamid.cs2")
    slack.wait_for(lambda: any(m["text"].endswith("5") or "\n5" in m["text"] for m in thread(slack)[2:]))
    with app.database() as db, db.sessions() as session:
        conversation = session.query(Conversation).one()
        assert conversation.status.value == "closed" and conversation.csat_score == 5
    slack.wait_for(lambda: "Rated 5/5" in card_text(slack))
    assert "Closed" in card_text(slack)


@pytest.fixture
def routed_app(app_env: dict[str, str], slack: SlackStandIn, tmp_path: Path) -> Iterator[AppProcess]:
    slack.add_channel(ROUTED, "whatsapp-leads")
    slack.set_members(ROUTED, {"U0ANA"})
    with running_app(
        {**app_env, "THREADLINE_ROUTES": f"whatsapp={ROUTED}"}, tmp_path / "threadline.log"
    ) as process:
        yield process


def test_a_routed_conversation_lives_in_its_channel_and_only_its_members_act_on_it(
    routed_app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    app = routed_app
    lead_writes(app, "hello from WhatsApp", message_id="wamid.r1")
    slack.wait_for(lambda: len(slack.messages(ROUTED)) == 1)
    assert slack.messages(CHANNEL) == []
    card_ts = slack.messages(ROUTED)[0]["ts"]
    slack.wait_for(lambda: len(slack.replies(ROUTED, card_ts)) == 1)

    def says(user: str, text: str) -> str:
        ts = slack.post_as_user(ROUTED, user, text, thread_ts=card_ts)
        event = message_event(user=user, text=text, ts=ts, thread_ts=card_ts, channel=ROUTED)
        assert app.slack_event(event).status_code == 200
        return ts

    says("U0BOB", "I am not in this channel")  # told by DM: an ephemeral cannot reach a non-member
    slack.wait_for(lambda: any("Not sent to the lead" in m["text"] for m in slack.messages("U0BOB")))
    says("U0ANA", "Hi from the WhatsApp team")
    graph.wait_for(lambda: len(graph.sent) == 1)
    assert sent_texts(graph) == ["Hi from the WhatsApp team"]


def test_check_names_every_routed_channel_and_the_one_the_app_is_missing_from(
    tmp_path: Path, slack: SlackStandIn, app_env: dict[str, str]
):
    env = {
        **app_env,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'check.db'}",
        "THREADLINE_ROUTES": f"campaign:Spring=C0SPRING,whatsapp={ROUTED}",
    }
    env.pop("REDIS_URL", None)
    slack.add_channel(ROUTED, "whatsapp-leads")
    slack.add_channel("C0SPRING", "spring", bot_is_member=False)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    result = run_cli("check", env=env, cwd=tmp_path)
    assert "#leads" in result.stdout and "#whatsapp-leads" in result.stdout and "whatsapp)" in result.stdout
    assert result.returncode == 1 and "not in #spring (campaign:spring)" in result.stdout, result.stdout

    bad = run_cli("check", env={**env, "THREADLINE_ROUTES": "whatsapp=nope"}, cwd=tmp_path)
    assert (
        bad.returncode == 1
        and "THREADLINE_ROUTES" in bad.stdout
        and "Traceback" not in bad.stdout + bad.stderr
    )
