"""WhatsApp in, Slack thread out, reply back: the whole app over HTTP, on both runtimes."""

from __future__ import annotations

import json
from typing import Any

from core.models import Conversation, Message, ProcessedEvent
from tests.e2e.harness import (
    CHANNEL,
    PHONE_NUMBER_ID,
    WHATSAPP_VERIFY,
    AppProcess,
    block_action,
    message_event,
)
from tests.standins import meta_webhooks as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

RUNTIMES = ("embedded-sqlite",)  # one runtime is enough here: see tests/e2e/conftest.py

LEAD = "15551234567"


def lead_writes(
    app: AppProcess, text: str, *, message_id: str, wa_id: str = LEAD, name: str = "Jane Doe"
) -> None:
    payload = meta.text_message(
        wa_id=wa_id, name=name, text=text, message_id=message_id, phone_number_id=PHONE_NUMBER_ID
    )
    response = app.whatsapp(payload)
    assert response.status_code == 200, response.text


def card_of(slack: SlackStandIn) -> dict[str, Any]:
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) >= 1)
    cards = slack.messages(CHANNEL)
    assert len(cards) == 1, f"expected one card, found {len(cards)}"
    return cards[0]


def card_text(slack: SlackStandIn) -> str:
    card = slack.message(CHANNEL, card_of(slack)["ts"])
    return card["text"] + json.dumps(card.get("blocks") or [])


def thread(slack: SlackStandIn) -> list[dict[str, Any]]:
    return slack.replies(CHANNEL, card_of(slack)["ts"])


def rep_says(app: AppProcess, slack: SlackStandIn, text: str, *, user: str = "U0ANA", **kw: Any) -> str:
    """A teammate types in the thread: Slack stores it, then sends us the event."""
    card_ts = card_of(slack)["ts"]
    ts = slack.post_as_user(CHANNEL, user, text, thread_ts=card_ts)
    response = app.slack_event(message_event(user=user, text=text, ts=ts, thread_ts=card_ts), **kw)
    assert response.status_code == 200, response.text
    return ts


def click(
    app: AppProcess,
    slack: SlackStandIn,
    action: dict[str, Any],
    *,
    user: str = "U0ANA",
    trigger_id: str = "1.2.3",
) -> None:
    response = app.slack_interaction(
        block_action(user=user, card_ts=card_of(slack)["ts"], action=action, trigger_id=trigger_id)
    )
    assert response.status_code == 200, response.text


def button(action_id: str) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "block_id": "card", "value": "1"}


# --- inbound ---------------------------------------------------------------------------------------


def test_a_new_leads_text_becomes_one_card_and_one_thread_entry(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "Hi! Do you ship to Lisbon?", message_id="wamid.in1")

    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1 and len(thread(slack)) == 1)
    text = card_text(slack)
    assert "Jane Doe" in text and "WhatsApp" in text and "Open" in text and "AI: manual" in text
    entry = thread(slack)[0]
    assert "Do you ship to Lisbon?" in entry["text"] + json.dumps(entry.get("blocks"))


def test_a_second_message_is_a_second_reply_under_the_same_card(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "first", message_id="wamid.a")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    lead_writes(app, "second", message_id="wamid.b")

    slack.wait_for(lambda: len(thread(slack)) == 2)
    assert len(slack.messages(CHANNEL)) == 1
    assert ["first" in thread(slack)[0]["text"], "second" in thread(slack)[1]["text"]] == [True, True]


def test_the_same_webhook_three_times_changes_nothing_more(app: AppProcess, slack: SlackStandIn):
    payload = meta.text_message(
        wa_id=LEAD, name="Jane", text="once", message_id="wamid.dup", phone_number_id=PHONE_NUMBER_ID
    )
    for _ in range(3):
        assert app.whatsapp(payload).status_code == 200
    lead_writes(app, "marker", message_id="wamid.after")  # once this shows, the duplicates had their chance

    slack.wait_for(lambda: len(thread(slack)) == 2)
    assert [("once" in m["text"], "marker" in m["text"]) for m in thread(slack)] == [
        (True, False),
        (False, True),
    ]
    assert app.count(Message) == 2 and app.count(Conversation) == 1


def test_a_badly_signed_webhook_is_refused_and_stores_nothing(app: AppProcess, slack: SlackStandIn):
    payload = meta.text_message(
        wa_id=LEAD, name="Mallory", text="hi", message_id="wamid.x", phone_number_id=PHONE_NUMBER_ID
    )
    raw = json.dumps(payload).encode()

    assert app.whatsapp(payload, secret="not-the-app-secret").status_code == 401
    assert app.post_whatsapp_raw(raw, signature=None).status_code == 401
    assert (
        app.post_whatsapp_raw(
            b"{not json", signature=meta.sign("whatsapp-app-secret-for-tests", b"{not json")
        ).status_code
        == 400
    )
    assert app.count(Message) == 0 and slack.calls_to("chat.postMessage") == []


def test_meta_verification_handshake(app: AppProcess):
    import httpx

    ok = httpx.get(
        f"{app.url}/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": WHATSAPP_VERIFY, "hub.challenge": "1158201444"},
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    wrong = httpx.get(
        f"{app.url}/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
    )
    assert wrong.status_code == 403


def test_lead_text_cannot_ping_anyone(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "<!channel> hey <@U0ANA> & co", message_id="wamid.ping", name="<!here>")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    posted = json.dumps(slack.messages(CHANNEL) + thread(slack))
    assert "<!channel>" not in posted and "<!here>" not in posted and "<@U0ANA>" not in posted
    assert "&lt;!channel&gt;" in posted


def test_a_non_text_message_still_shows_what_arrived(app: AppProcess, slack: SlackStandIn):
    payload = meta.location_message(
        wa_id=LEAD,
        name="Jane",
        lat=38.72,
        lon=-9.14,
        place="Office",
        address="Rua A 1",
        message_id="wamid.loc",
        phone_number_id=PHONE_NUMBER_ID,
    )
    assert app.whatsapp(payload).status_code == 200
    slack.wait_for(lambda: len(thread(slack)) == 1)
    assert "location" in thread(slack)[0]["text"].lower()


# --- rep replies -----------------------------------------------------------------------------------


def test_a_rep_reply_is_sent_once_and_shows_its_delivery(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(app, "Price for 10 seats?", message_id="wamid.q")
    slack.wait_for(lambda: len(thread(slack)) == 1)

    ts = rep_says(app, slack, "Hi Jane &amp; team, see <https://example.com/pricing|our pricing>")

    graph.wait_for(lambda: len(graph.sent) == 1)
    sent = graph.sent[0]
    assert sent.to == LEAD
    assert sent.body["text"]["body"] == "Hi Jane & team, see our pricing (https://example.com/pricing)"
    slack.wait_for(lambda: "white_check_mark" in slack.reactions(CHANNEL, ts))
    assert "Pending" in card_text(slack)

    status = meta.status_update(
        message_id=sent.message_id, recipient_id=LEAD, status="read", phone_number_id=PHONE_NUMBER_ID
    )
    assert app.whatsapp(status).status_code == 200
    slack.wait_for(lambda: "eyes" in slack.reactions(CHANNEL, ts))
    late = meta.status_update(
        message_id=sent.message_id, recipient_id=LEAD, status="delivered", phone_number_id=PHONE_NUMBER_ID
    )
    assert app.whatsapp(late).status_code == 200  # arrives after "read": must not move it back
    with app.database() as db, db.sessions() as session:
        assert (
            session.query(Message).filter_by(provider_message_id=sent.message_id).one().delivery_status.value
            == "read"
        )
    assert len(graph.sent) == 1


def test_a_retried_slack_event_sends_once(app: AppProcess, slack: SlackStandIn, graph: GraphStandIn):
    lead_writes(app, "hello", message_id="wamid.r")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    card_ts = card_of(slack)["ts"]
    ts = slack.post_as_user(CHANNEL, "U0ANA", "Only once please", thread_ts=card_ts)
    event = message_event(user="U0ANA", text="Only once please", ts=ts, thread_ts=card_ts)

    for retry in (None, 1, 2, 3):
        assert app.slack_event(event, event_id="Ev0RETRIED", retry_num=retry).status_code == 200

    graph.wait_for(lambda: len(graph.sent) == 1)
    slack.wait_for(lambda: "white_check_mark" in slack.reactions(CHANNEL, ts))
    assert len(graph.sent) == 1 and app.count(ProcessedEvent) == 1


def test_notes_are_never_sent(app: AppProcess, slack: SlackStandIn, graph: GraphStandIn):
    lead_writes(app, "hello", message_id="wamid.n")
    slack.wait_for(lambda: len(thread(slack)) == 1)

    mention = rep_says(app, slack, "<@U0BOB> this one is a big account")
    prefixed = rep_says(app, slack, "note: call them Monday")

    slack.wait_for(
        lambda: "lock" in slack.reactions(CHANNEL, mention) and "lock" in slack.reactions(CHANNEL, prefixed)
    )
    assert graph.sent == [] and graph.calls == []
    with app.database() as db, db.sessions() as session:
        notes = [m.text for m in session.query(Message).filter_by(direction="note").order_by(Message.id)]
    assert notes == ["@Bob Stone this one is a big account", "call them Monday"]


def test_our_own_bot_messages_are_ignored(app: AppProcess, slack: SlackStandIn, graph: GraphStandIn):
    lead_writes(app, "hello", message_id="wamid.bot")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    entry = thread(slack)[0]
    bot_event = message_event(
        user="U0BOT", text=entry["text"], ts=entry["ts"], thread_ts=card_of(slack)["ts"]
    )
    bot_event["bot_id"] = "B0BOT"
    assert app.slack_event(bot_event).status_code == 200
    lead_writes(app, "marker", message_id="wamid.bot2")
    slack.wait_for(lambda: len(thread(slack)) == 2)
    assert graph.sent == [] and app.count(Message) == 2


def test_a_refused_send_says_why_and_can_be_retried(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(app, "hello", message_id="wamid.f")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    graph.fail_next(131047)

    ts = rep_says(app, slack, "Are you still there?")

    slack.wait_for(lambda: "warning" in slack.reactions(CHANNEL, ts))
    slack.wait_for(lambda: any("24 hours" in m["text"] for m in thread(slack)))
    notice = next(m for m in thread(slack) if "24 hours" in m["text"])
    retry = next(e for b in notice["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert graph.sent == []

    response = app.slack_interaction(
        {
            **block_action(user="U0ANA", card_ts=card_of(slack)["ts"], action=retry),
            "container": {
                "type": "message",
                "message_ts": notice["ts"],
                "thread_ts": card_of(slack)["ts"],
                "channel_id": CHANNEL,
            },
        }
    )
    assert response.status_code == 200
    graph.wait_for(lambda: len(graph.sent) == 1)
    slack.wait_for(lambda: "white_check_mark" in slack.reactions(CHANNEL, ts))


def test_an_edit_is_not_sent_and_the_rep_is_told(app: AppProcess, slack: SlackStandIn, graph: GraphStandIn):
    lead_writes(app, "hello", message_id="wamid.edit")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    ts = rep_says(app, slack, "Helo Jane")
    graph.wait_for(lambda: len(graph.sent) == 1)
    card_ts = card_of(slack)["ts"]
    edit = {
        "type": "message",
        "subtype": "message_changed",
        "channel": CHANNEL,
        "hidden": True,
        "ts": "1700000099.000001",
        "event_ts": "1700000099.000001",
        "message": {"type": "message", "user": "U0ANA", "text": "Hello Jane", "ts": ts, "thread_ts": card_ts},
        "previous_message": {
            "type": "message",
            "user": "U0ANA",
            "text": "Helo Jane",
            "ts": ts,
            "thread_ts": card_ts,
        },
    }
    assert app.slack_event(edit).status_code == 200
    slack.wait_for(lambda: any("Edits don't reach the lead" in e.get("text", "") for e in slack.ephemerals))
    assert len(graph.sent) == 1
