"""The card's buttons, clicked as Slack sends clicks: each changes the state and the card says so."""

from __future__ import annotations

import json
from typing import Any

from bot.blocks import ids
from core.models import AIMode, Conversation, Event
from tests.e2e.harness import CHANNEL, AppProcess, block_action
from tests.e2e.test_whatsapp_slack import card_of, card_text, click, lead_writes, thread
from tests.standins.slack_api import SlackStandIn

RUNTIMES = ("embedded-sqlite",)  # one runtime is enough here: see tests/e2e/conftest.py


def card_action(slack: SlackStandIn, action_id: str) -> dict[str, Any]:
    """The element on the current card with this action_id, as Slack would echo it back on click."""
    for block in slack.message(CHANNEL, card_of(slack)["ts"]).get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return {**element, "block_id": block.get("block_id", "")}
    raise AssertionError(f"no {action_id} on the card: {card_text(slack)}")


def wait_card(slack: SlackStandIn, *words: str) -> None:
    slack.wait_for(lambda: all(word in card_text(slack) for word in words))


def conversation(app: AppProcess) -> Conversation:
    with app.database() as db, db.sessions() as session:
        return session.query(Conversation).one()


def test_each_button_changes_state_and_card(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "Hello, I'd like a demo", message_id="wamid.btn")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    wait_card(slack, "Open", "AI: manual", "Unassigned")

    click(app, slack, card_action(slack, ids.TAKE_OVER), user="U0ANA")
    wait_card(slack, "<@U0ANA>")
    assert conversation(app).assignee.slack_user_id == "U0ANA"

    click(app, slack, {**card_action(slack, ids.ASSIGN), "selected_user": "U0BOB"}, user="U0ANA")
    wait_card(slack, "<@U0BOB>")
    slack.wait_for(lambda: any(m["text"].startswith("You were assigned") for m in slack.messages("U0BOB")))
    link = f"/archives/{CHANNEL}/p{card_of(slack)['ts'].replace('.', '')}|"  # the DM links to the thread
    assert any(link in json.dumps(m.get("blocks")) for m in slack.messages("U0BOB"))

    trigger = slack.issue_trigger_id()
    click(app, slack, card_action(slack, ids.EDIT_TAGS), user="U0ANA", trigger_id=trigger)
    slack.wait_for(lambda: len(slack.opened_views) == 1)
    modal = slack.opened_views[0]
    submission = {
        "type": "view_submission",
        "team": {"id": "T0TEST", "domain": "threadline-test"},
        "user": {"id": "U0ANA", "name": "ana", "team_id": "T0TEST"},
        "api_app_id": "A0THREADLINE",
        "token": "legacy",
        "trigger_id": slack.issue_trigger_id(),
        "view": {
            **modal,
            "id": "V00000001",
            "team_id": "T0TEST",
            "state": {
                "values": {
                    ids.NEW_TAGS_BLOCK: {
                        ids.NEW_TAGS_ACTION: {"type": "plain_text_input", "value": "VIP, demo"}
                    }
                }
            },
        },
    }
    assert app.slack_interaction(submission).status_code == 200
    wait_card(slack, "demo", "vip")

    click(app, slack, card_action(slack, ids.CLOSE), user="U0ANA")
    wait_card(slack, ids.REOPEN)  # the Reopen button: "Closed" alone is already in Close's confirm text
    assert conversation(app).closed_at is not None

    click(app, slack, card_action(slack, ids.REOPEN), user="U0BOB")
    wait_card(slack, ids.CLOSE)

    # No agent runs on this server: the card does not offer to hand the conversation to one.
    assert ids.RESUME_AI not in card_text(slack) and "AI: manual" in card_text(slack)

    with app.database() as db, db.sessions() as session:
        kinds = [e.kind for e in session.query(Event).order_by(Event.id)]
    assert kinds.count("status") == 2 and "assignee" in kinds and "tags" in kinds
    assert len(slack.messages(CHANNEL)) == 1  # still one card: every change was an update


def test_view_lead_opens_the_lead_modal(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "hi", message_id="wamid.view", name="Jane <Doe>")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    trigger = slack.issue_trigger_id()
    click(app, slack, card_action(slack, ids.VIEW_LEAD), trigger_id=trigger)
    slack.wait_for(lambda: len(slack.opened_views) == 1)
    shown = json.dumps(slack.opened_views[0])
    assert "Jane &lt;Doe&gt;" in shown and "+15551234567" in shown


def test_a_click_from_someone_slack_does_not_know_changes_nothing(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "hi", message_id="wamid.ghost")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    response = app.slack_interaction(
        block_action(user="U0GHOST", card_ts=card_of(slack)["ts"], action=card_action(slack, ids.CLOSE))
    )
    assert response.status_code == 200
    slack.wait_for(lambda: slack.calls_to("chat.postEphemeral") != [])  # the app tried to tell them why
    assert conversation(app).status.value == "open"
    assert "Close" in card_text(slack) and len(slack.calls_to("chat.update")) == 0


def test_app_home_shows_my_conversations_and_the_queue(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "mine soon", message_id="wamid.h1", wa_id="15550000001", name="Ann")
    lead_writes(app, "nobody's", message_id="wamid.h2", wa_id="15550000002", name="Ben")
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 2)
    first_card = slack.messages(CHANNEL)[0]
    # Its entry in the thread means the card's ts is stored: a click in the instant between Slack taking
    # the card and Threadline recording it is not what this test is about.
    slack.wait_for(lambda: len(slack.replies(CHANNEL, first_card["ts"])) == 1)
    response = app.slack_interaction(
        block_action(
            user="U0ANA",
            card_ts=first_card["ts"],
            action={"type": "button", "action_id": ids.TAKE_OVER, "value": "1"},
        )
    )
    assert response.status_code == 200
    slack.wait_for(lambda: "<@U0ANA>" in json.dumps(slack.message(CHANNEL, first_card["ts"])))

    opened = {
        "type": "app_home_opened",
        "user": "U0ANA",
        "channel": "D0ANA",
        "tab": "home",
        "event_ts": "1700000000.1",
    }
    assert app.slack_event(opened).status_code == 200
    slack.wait_for(lambda: "U0ANA" in slack.published_views)
    home = json.dumps(slack.published_views["U0ANA"])
    assert "Your open conversations (1)" in home and "Ann" in home
    assert "Unassigned (1)" in home and "Ben" in home


def test_take_over_then_manual_only_and_resume_ai_says_no_agent_runs(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "hi", message_id="wamid.modes")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    # Without an agent on this server conversations start manual; this one had the AI before (as after
    # a restart without OPENAI_API_KEY), so the AI buttons have something to do.
    with app.database() as db, db.transaction() as session:
        session.query(Conversation).one().ai_mode = AIMode.ACTIVE
    click(app, slack, card_action(slack, ids.TAKE_OVER), user="U0ANA")
    wait_card(slack, "AI: paused", "<@U0ANA>", ids.MANUAL_ONLY)
    assert ids.RESUME_AI not in card_text(slack)  # nobody to hand it back to

    click(app, slack, card_action(slack, ids.MANUAL_ONLY), user="U0ANA")
    wait_card(slack, "AI: manual")
    assert ids.MANUAL_ONLY not in card_text(slack) and conversation(app).ai_mode == AIMode.MANUAL

    click(app, slack, {"type": "button", "action_id": ids.RESUME_AI, "value": "1"}, user="U0ANA")
    slack.wait_for(lambda: any("AI agent is not running" in e["text"] for e in slack.ephemerals))
    assert conversation(app).ai_mode == AIMode.MANUAL
    with app.database() as db, db.sessions() as session:
        modes = [e.new["ai_mode"] for e in session.query(Event).filter_by(kind="ai_mode").order_by(Event.id)]
    assert modes == ["paused", "manual"]
