"""WhatsApp, every kind of message and what becomes of a reply: the whole app over HTTP, both runtimes.

Meta's own webhook examples (from the spec) go through the real, signed /webhooks/whatsapp endpoint
and each shows in the thread; reactions land on the entry they react to; status callbacks (checked
against the spec) mark the rep's message; outside the 24-hour window the rep is offered the
configured templates, and a click sends one, validated by the Graph stand-in against the spec.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.models import Conversation, DeliveryStatus, Message, utcnow
from tests.conftest import SPECS
from tests.e2e.conftest import running_app
from tests.e2e.harness import CHANNEL, PHONE_NUMBER_ID, AppProcess, block_action, message_event
from tests.standins import meta_webhooks as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

RUNTIMES = ("celery-postgres",)  # one runtime is enough here: see tests/e2e/conftest.py

SPEC = SPECS / "whatsapp" / "business-messaging-api_v23.0.yaml"
LEAD = "16505551234"  # the lead of Meta's examples
TEMPLATES = "follow_up:en_US,reminder:pt_BR"
OUTSIDER = "U0OLGA"

# What each of the spec's message examples must show in the thread (as Slack stores the text).
SHOWN = {
    "Text Message": ["Does it come in another color?"],
    "Text Message with Context (Product Inquiry)": [
        "Is this still available?",
        "asking about product di9ozbzfi4",
    ],
    "Text Message from Click to WhatsApp Ad": [
        "Hello! Can I get more info on this?",
        "came from a click-to-WhatsApp ad: Chat with us",
    ],
    "Reaction Message": ["reacted 👍", "an earlier message Threadline does not have"],
    "Image Message": ["[image] Taj Mahal"],
    "Location Message": [
        "Philz Coffee — 101 Forest Ave, Palo Alto, CA 94301",
        "https://www.google.com/maps/search/?api=1&amp;query=37.44221496582,-122.16165924072",
    ],
    "Contact Sharing Message": ["[contact card] Lucía Gómez (Google) — phone: +1 (983) 555-2319"],
    "Unsupported Message": ["cannot be shown here", "Message type is currently not supported."],
    "Button Message": ["[quick reply] Unsubscribe"],
    "Interactive List Reply Message": ["[list reply] Priority Mail Express — Next Day to 2 Days"],
    "Interactive Button Reply Message": ["[button reply] Cancel"],
    "Order Message": ["[order] 2 items", "2 × di9ozbzfi4 at 30 USD"],
    "System Message": ["[system] User Sheena Nelson changed from 16505551234 to 12195555358"],
}


@pytest.fixture
def app(app_env: dict[str, str], tmp_path: Path, slack: SlackStandIn) -> Iterator[AppProcess]:
    slack.add_user(OUTSIDER, "olga", "Olga Outside")
    slack.set_members(CHANNEL, {"U0ANA", "U0BOB"})
    with running_app({**app_env, "WHATSAPP_TEMPLATES": TEMPLATES}, tmp_path / "threadline.log") as process:
        yield process


def card_ts(slack: SlackStandIn) -> str:
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) >= 1)
    return str(slack.messages(CHANNEL)[0]["ts"])


def thread(slack: SlackStandIn) -> list[dict[str, Any]]:
    return slack.replies(CHANNEL, card_ts(slack))


def shown(entry: dict[str, Any]) -> str:
    return entry["text"] + json.dumps(entry.get("blocks") or [], ensure_ascii=False)


def lead_writes(app: AppProcess, text: str, message_id: str) -> None:
    payload = meta.text_message(
        wa_id=LEAD, name="Sheena Nelson", text=text, message_id=message_id, phone_number_id=PHONE_NUMBER_ID
    )
    assert app.whatsapp(payload).status_code == 200


def lead_reacts(app: AppProcess, emoji: str, to: str) -> None:
    payload = meta.reaction_message(
        wa_id=LEAD, name="Sheena Nelson", emoji=emoji, reacted_message_id=to, phone_number_id=PHONE_NUMBER_ID
    )
    assert app.whatsapp(payload).status_code == 200


def status(app: AppProcess, message_id: str, said: str, errors: list[dict[str, Any]] | None = None) -> None:
    payload = meta.status_update(
        message_id=message_id, recipient_id=LEAD, status=said, phone_number_id=PHONE_NUMBER_ID, errors=errors
    )
    assert meta.status_problems(SPEC, payload) == []
    assert app.whatsapp(payload).status_code == 200


def rep_says(app: AppProcess, slack: SlackStandIn, text: str) -> str:
    ts = slack.post_as_user(CHANNEL, "U0ANA", text, thread_ts=card_ts(slack))
    event = message_event(user="U0ANA", text=text, ts=ts, thread_ts=card_ts(slack))
    assert app.slack_event(event).status_code == 200
    return ts


def told(slack: SlackStandIn, user: str) -> bool:
    """Told privately (an ephemeral, or a DM when they are not in the channel)."""
    dms = slack.messages(user) if user in slack.channels else []
    return any(e["user"] == user for e in slack.ephemerals) or bool(dms)


def click_in_thread(
    app: AppProcess, slack: SlackStandIn, notice: dict[str, Any], button: dict, user: str
) -> None:
    payload = {
        **block_action(user=user, card_ts=card_ts(slack), action=button),
        "container": {
            "type": "message",
            "message_ts": notice["ts"],
            "thread_ts": card_ts(slack),
            "channel_id": CHANNEL,
        },
    }
    assert app.slack_interaction(payload).status_code == 200


def test_every_message_example_in_the_spec_shows_in_the_thread(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    examples = {
        name: payload
        for name, payload in meta.spec_webhook_examples(SPEC).items()
        if any(c["field"] == "messages" for e in payload["entry"] for c in e["changes"])
    }
    assert set(examples) == set(SHOWN), "the spec's examples changed: say what each must show"
    ad = "Text Message from Click to WhatsApp Ad"  # first: an ad is the campaign of a new conversation
    names = [ad, *sorted(set(examples) - {ad})]
    for number, name in enumerate(names):
        payload = json.loads(json.dumps(examples[name]))  # Meta reuses ids across examples: make each one
        message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
        message["id"] = f"wamid.EXAMPLE{number:03d}"
        if message["type"] == "image":
            message["image"]["id"] = graph.add_media(b"\xff\xd8\xff\xe0 a photo", "image/jpeg")
        response = app.whatsapp(payload)
        assert response.status_code == 200, (name, response.text)

    def missing() -> list[str]:
        entries = [shown(entry) for entry in thread(slack)]
        return [name for name in names if not any(all(w in e for w in SHOWN[name]) for e in entries)]

    try:
        slack.wait_for(lambda: not missing(), timeout=30)
    finally:
        assert missing() == [], [shown(entry) for entry in thread(slack)]
    with app.database() as db, db.sessions() as session:
        conversation = session.query(Conversation).one()
        assert conversation.campaign is not None and conversation.campaign.name == "Chat with us"


def test_a_reaction_shows_on_the_entry_it_reacts_to_and_is_replaced_or_taken_back(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(app, "Here is my order number", "wamid.L1")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    entry_ts = thread(slack)[0]["ts"]
    reply_ts = rep_says(app, slack, "Thanks, checking now")
    graph.wait_for(lambda: len(graph.sent) == 1)
    with app.database() as db, db.sessions() as session:
        unread_before = session.query(Conversation).one().unread_count

    lead_reacts(app, "👍", "wamid.L1")
    slack.wait_for(lambda: "thumbsup" in slack.reactions(CHANNEL, entry_ts))
    lead_reacts(app, "❤️", "wamid.L1")  # WhatsApp keeps one reaction per person: the new one replaces it
    slack.wait_for(lambda: "heart" in slack.reactions(CHANNEL, entry_ts))
    assert "thumbsup" not in slack.reactions(CHANNEL, entry_ts)
    lead_reacts(app, "🙏🏽", graph.sent[0].message_id)  # on the rep's own reply
    slack.wait_for(lambda: "pray::skin-tone-4" in slack.reactions(CHANNEL, reply_ts))
    lead_reacts(app, "", "wamid.L1")  # taken back
    slack.wait_for(lambda: "heart" not in slack.reactions(CHANNEL, entry_ts))

    lead_writes(app, "marker", "wamid.L2")  # once this shows, every reaction before it had its turn
    slack.wait_for(lambda: any("marker" in e["text"] for e in thread(slack)))
    assert next(e["text"] for e in thread(slack) if e.get("user") == "U0BOT").endswith(
        "Here is my order number"
    )
    assert len(thread(slack)) == 3  # the entry, the reply, the marker: no line for any reaction
    with app.database() as db, db.sessions() as session:
        conversation = session.query(Conversation).one()
        assert conversation.unread_count == unread_before + 1  # only the marker counts
        assert conversation.status.value == "open"


def test_status_callbacks_mark_the_reply_and_a_failure_says_why(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(app, "Price for 10 seats?", "wamid.Q1")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    first = rep_says(app, slack, "It is 10 € per seat")
    graph.wait_for(lambda: len(graph.sent) == 1)
    slack.wait_for(lambda: "white_check_mark" in slack.reactions(CHANNEL, first))

    status(app, graph.sent[0].message_id, "read")  # read overtakes delivered
    slack.wait_for(lambda: "eyes" in slack.reactions(CHANNEL, first))
    status(app, graph.sent[0].message_id, "delivered")
    status(app, graph.sent[0].message_id, "failed", [{"code": 131026, "title": "Message undeliverable"}])

    second = rep_says(app, slack, "Shall I send the contract?")
    graph.wait_for(lambda: len(graph.sent) == 2)
    slack.wait_for(lambda: "white_check_mark" in slack.reactions(CHANNEL, second))
    error = {"code": 131026, "title": "Message undeliverable", "error_data": {"details": "Not on WhatsApp"}}
    status(app, graph.sent[1].message_id, "failed", [error])
    slack.wait_for(lambda: "warning" in slack.reactions(CHANNEL, second))
    slack.wait_for(lambda: any("Not delivered" in e["text"] for e in thread(slack)))
    notice = next(e for e in thread(slack) if "Not delivered" in e["text"])
    assert "could not deliver it: the number may not be on WhatsApp" in notice["text"]
    assert "Not on WhatsApp" in notice["text"]

    with app.database() as db, db.sessions() as session:
        by_id = {
            m.provider_message_id: m.delivery_status
            for m in session.query(Message).filter(Message.direction == "outbound")
        }
    assert (
        by_id[graph.sent[0].message_id] == DeliveryStatus.READ
    )  # a late delivered or failed never undoes read
    assert slack.reactions(CHANNEL, first).keys() == {"eyes"}


def test_outside_the_window_the_rep_is_offered_templates_and_a_click_sends_one(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(app, "Hi, tell me more", "wamid.W1")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    with app.database() as db, db.transaction() as session:  # the lead last wrote two days ago
        session.query(Conversation).one().last_inbound_at = utcnow() - timedelta(days=2)

    late = rep_says(app, slack, "Are you still interested?")

    slack.wait_for(lambda: "warning" in slack.reactions(CHANNEL, late))
    slack.wait_for(lambda: any("reply window is closed" in e["text"] for e in thread(slack)))
    notice = next(e for e in thread(slack) if "reply window is closed" in e["text"])
    buttons = [el for b in notice["blocks"] if b["type"] == "actions" for el in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == [
        "Send follow_up (en_US)",
        "Send reminder (pt_BR)",
        "Retry",
    ]
    assert graph.calls == []  # known beforehand: Graph was never asked to send free text

    click_in_thread(app, slack, notice, buttons[1], OUTSIDER)  # not in the channel: nothing is sent
    slack.wait_for(lambda: told(slack, OUTSIDER))

    click_in_thread(app, slack, notice, buttons[1], "U0ANA")
    click_in_thread(app, slack, notice, buttons[1], "U0ANA")  # a second click sends nothing more
    graph.wait_for(lambda: len(graph.sent) == 1)
    sent = graph.sent[0]
    assert sent.type == "template" and sent.to == LEAD
    assert sent.body["template"] == {
        "name": "reminder",
        "language": {"policy": "deterministic", "code": "pt_BR"},
    }
    slack.wait_for(lambda: any("[template reminder (pt_BR)]" in e["text"] for e in thread(slack)))
    entry = next(e for e in thread(slack) if "[template reminder (pt_BR)]" in e["text"])
    assert "Ana Lima" in shown(entry)
    slack.wait_for(lambda: "white_check_mark" in slack.reactions(CHANNEL, entry["ts"]))
    lead_writes(app, "marker", "wamid.W2")
    slack.wait_for(lambda: any("marker" in e["text"] for e in thread(slack)))
    assert len(graph.sent) == 1
