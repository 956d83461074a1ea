"""Every way a teammate marks a thread message as internal keeps it from the lead, on both runtimes."""

from __future__ import annotations

from typing import Any

from core.models import Message
from tests.e2e.harness import CHANNEL, AppProcess, message_event
from tests.e2e.test_whatsapp_slack import card_of, lead_writes, thread
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn


def rich_text(*elements: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "type": "rich_text",
            "block_id": "rt",
            "elements": [{"type": "rich_text_section", "elements": list(elements)}],
        }
    ]


# (text as Slack sends it, blocks or None): each one is a note the lead must never receive.
NOTES: dict[str, tuple[str, list[dict[str, Any]] | None]] = {
    "person": ("<@U0BOB> big account, careful", None),
    "user group": ("<!subteam^S0SALES|@sales-team> who knows them?", None),
    "here": ("<!here> anyone free for a call?", None),
    "channel": ("<!channel> heads up", None),
    "everyone": ("<!everyone> heads up", None),
    "typed at": ("@ana can you take this one", None),
    "note colon": ("note: call them Monday", None),
    "bold Note": ("*Note:* they want a discount", None),
    "italic note": ("_note:_ prefers email", None),
    "NOTE dash": ("NOTE - budget approved", None),
    "note space colon": ("note : check the contract", None),
    "full-width colon": ("note：ask legal", None),
    "zero-width space": ("\u200bnote: invisible start", None),
    "nbsp": ("\u00a0\u00a0note: after no-break spaces", None),
    "broadcast in blocks only": (
        "anyone free?",
        rich_text({"type": "broadcast", "range": "here"}, {"type": "text", "text": " anyone free?"}),
    ),
    "user group in blocks only": (
        "who knows them?",
        rich_text(
            {"type": "usergroup", "usergroup_id": "S0SALES"}, {"type": "text", "text": " who knows them?"}
        ),
    ),
    "bold note in blocks only": (
        "they asked twice",
        rich_text(
            {"type": "text", "text": "Note:", "style": {"bold": True}},
            {"type": "text", "text": " they asked twice"},
        ),
    ),
}


def test_every_note_variant_is_kept_from_the_lead(app: AppProcess, slack: SlackStandIn, graph: GraphStandIn):
    lead_writes(app, "hello", message_id="wamid.notes")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    card_ts = card_of(slack)["ts"]

    posted = {}
    for name, (text, blocks) in NOTES.items():
        ts = slack.post_as_user(CHANNEL, "U0ANA", text, thread_ts=card_ts)
        event = message_event(user="U0ANA", text=text, ts=ts, thread_ts=card_ts, blocks=blocks)
        assert app.slack_event(event).status_code == 200, name
        posted[name] = ts
    marker = slack.post_as_user(CHANNEL, "U0ANA", "Thanks, we ship to Lisbon", thread_ts=card_ts)
    app.slack_event(
        message_event(user="U0ANA", text="Thanks, we ship to Lisbon", ts=marker, thread_ts=card_ts)
    )

    # Once the real reply has gone out, every note before it has had its chance to leak.
    graph.wait_for(lambda: len(graph.sent) == 1)
    slack.wait_for(lambda: all("lock" in slack.reactions(CHANNEL, ts) for ts in posted.values()))
    assert [m.body["text"]["body"] for m in graph.sent] == ["Thanks, we ship to Lisbon"]
    with app.database() as db, db.sessions() as session:
        directions = {
            m.slack_ts: m.direction.value for m in session.query(Message).filter(Message.slack_ts.isnot(None))
        }
    kept_back = [name for name, ts in posted.items() if directions.get(ts) != "note"]
    assert kept_back == []
