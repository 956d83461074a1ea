"""Lead text never pings anyone in any Slack surface.

A lead whose name, message text, file name and caption carry Slack's mention and link markup
(`<!channel>`, `<!here|…>`, `<!everyone>`, `<@U…>`, `<!subteam^…>`, `<https://…|…>`, `@here`) is taken
through every surface: the card, thread entries, App Home, /leads and its answer, the assignment and
new-message DMs, the SLA reminder and View lead. Then every payload the Slack stand-in recorded
(chat.postMessage, chat.update, chat.postEphemeral, views.open/push/publish, response_url) and every
answer the app gave Slack directly is scanned: none may hold the lead's markup unescaped.

The app's own `<!here>` (the SLA reminder of an unassigned conversation) is legitimate, so the lead's
markup uses forms the app never writes (`<!here|lead>`, `<@U0LEADPING>`…).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.blocks import ids
from tests.e2e.conftest import running_app
from tests.e2e.harness import PHONE_NUMBER_ID, TEAM, AppProcess, block_action, interaction
from tests.e2e.test_card_buttons import card_action
from tests.e2e.test_whatsapp_slack import card_of, thread
from tests.standins import meta_webhooks as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

RUNTIMES = ("embedded-sqlite",)  # one runtime is enough here: see tests/e2e/conftest.py

# What the lead writes: each is markup Slack acts on when it arrives unescaped.
PINGS = (
    "<!channel>",
    "<!here|lead>",
    "<!everyone>",
    "<@U0LEADPING>",
    "<!subteam^S1PING|@sales>",
    "<https://evil.example/login|Your bank>",
    "<#C0LEADPING>",
)
HOSTILE = " ".join(PINGS) + " @here @channel"
LEAD = "15550004242"
METHODS = (
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "views.open",
    "views.push",
    "views.publish",
)


def unescaped(payload: Any) -> list[str]:
    """The lead's markup found as Slack would read it in `payload` (anything JSON)."""
    text = json.dumps(payload, ensure_ascii=False)
    return [ping for ping in PINGS if ping in text]  # escaping turns every `<`: one left is the markup


def whatsapp(app: AppProcess, message: dict[str, Any]) -> None:
    assert app.whatsapp(message).status_code == 200


def test_lead_text_pings_no_one_on_any_surface(
    app_env: dict[str, str], slack: SlackStandIn, graph: GraphStandIn, tmp_path: Path
):
    env = {**app_env, "THREADLINE_SLA_HOURS": "0.0003"}  # about a second: the reminder comes during the test
    with running_app(env, tmp_path / "pings.log") as app:
        answers = walk_every_surface(app, slack, graph)
    scanned = [(call.method, call.args) for method in METHODS for call in slack.calls_to(method)]
    scanned += [("response_url", response) for response in slack.responses]
    scanned += [("answer to Slack", answer) for answer in answers]
    surfaces = {"chat.postMessage", "chat.update", "views.open", "views.publish", "response_url"}
    assert {method for method, _ in scanned} >= surfaces
    # A typed `@here` pings only when the message asks Slack to link names: none may.
    assert [method for method, args in scanned if isinstance(args, dict) and args.get("link_names")] == []
    found = [(method, unescaped(args)) for method, args in scanned if unescaped(args)]
    assert found == [], f"lead markup reached Slack unescaped: {found}"
    # And the lead's words were shown, escaped: the scan looked at the lead's text, not at nothing.
    shown = json.dumps([args for _, args in scanned])
    assert "&lt;!channel&gt;" in shown and "&lt;@U0LEADPING&gt;" in shown


def walk_every_surface(app: AppProcess, slack: SlackStandIn, graph: GraphStandIn) -> list[Any]:
    answers: list[Any] = []

    def click(user: str, action: dict[str, Any]) -> None:
        card_ts = card_of(slack)["ts"]
        payload = block_action(user=user, card_ts=card_ts, action=action, trigger_id=slack.issue_trigger_id())
        response = app.slack_interaction({**payload, "response_url": app.response_url("actions")})
        assert response.status_code == 200
        answers.append(response.text)

    # Bob wants to hear of assignments and of new messages in his conversations (App Home's checkboxes).
    home = {
        **interaction("block_actions", "U0BOB"),
        "trigger_id": slack.issue_trigger_id(),
        "container": {"type": "view", "view_id": "V0HOME"},
        "view": {"id": "V0HOME", "type": "home", "team_id": TEAM, "blocks": [], "state": {"values": {}}},
        "actions": [
            {
                "action_id": ids.HOME_NOTIFICATIONS,
                "block_id": ids.HOME_NOTIFICATIONS_BLOCK,
                "type": "checkboxes",
                "selected_options": [{"value": ids.NOTIFY_ON_ASSIGN}, {"value": ids.NOTIFY_ON_MESSAGE}],
            }
        ],
    }
    assert app.slack_interaction(home).status_code == 200
    slack.wait_for(lambda: "U0BOB" in slack.published_views)

    # The lead: name, text, then a document whose file name and caption carry markup too.
    first = meta.text_message(
        wa_id=LEAD,
        name=f"Eve {HOSTILE}",
        text=HOSTILE,
        message_id="wamid.ping1",
        phone_number_id=PHONE_NUMBER_ID,
    )
    whatsapp(app, first)
    slack.wait_for(lambda: len(thread(slack)) >= 1)
    slack.wait_for(lambda: any("has been waiting" in m["text"] for m in thread(slack)))  # the SLA reminder

    click("U0ANA", {**card_action(slack, ids.ASSIGN), "selected_user": "U0BOB"})  # Bob is told by DM
    slack.wait_for(lambda: "U0BOB" in slack.channels and len(slack.messages("U0BOB")) >= 1)

    document = meta.media_message(
        "document",
        wa_id=LEAD,
        name=f"Eve {HOSTILE}",
        phone_number_id=PHONE_NUMBER_ID,
        caption=f"caption {HOSTILE}",
        filename="<!channel> <@U0LEADPING>.pdf",
        message_id="wamid.ping2",
    )
    document["entry"][0]["changes"][0]["value"]["messages"][0]["document"]["id"] = graph.add_media(
        b"%PDF-1.4 a file", "application/pdf"
    )
    whatsapp(app, document)
    slack.wait_for(lambda: len(slack.messages("U0BOB")) >= 2)  # the new-message DM
    slack.wait_for(lambda: any("caption" in m["text"] or "caption" in json.dumps(m) for m in thread(slack)))

    click("U0ANA", card_action(slack, ids.VIEW_LEAD))
    slack.wait_for(lambda: len(slack.opened_views) >= 1)

    for user in ("U0ANA", "U0BOB"):
        opened = {"type": "app_home_opened", "user": user, "channel": "D0X", "tab": "home", "event_ts": "1.1"}
        assert app.slack_event(opened).status_code == 200
    slack.wait_for(lambda: "Eve" in json.dumps(slack.published_views.get("U0BOB")))  # his conversation

    for query in ("", "Eve", "all", "stats"):
        command = app.slack_command(query, user_id="U0ANA")
        assert command.status_code == 200
        answers.append(command.json())
    click("U0ANA", {"type": "button", "action_id": ids.LEADS_PREVIOUS, "block_id": ids.LEADS_PAGES_BLOCK,
                    "value": json.dumps({"q": "Eve", "o": 0})})  # fmt: skip
    slack.wait_for(lambda: "Eve" in json.dumps(slack.responses))  # a /leads page, through its response_url
    return answers
