"""Only full members of the conversation's channel act on it: guests, apps and outsiders are told
privately and change nothing — buttons, modals, Retry and thread replies alike."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.blocks import ids
from core.models import Conversation, Event, Message
from tests.e2e.harness import CHANNEL, TEAM, AppProcess, block_action
from tests.e2e.test_card_buttons import card_action, conversation
from tests.e2e.test_whatsapp_slack import card_of, lead_writes, rep_says, thread
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

RUNTIMES = ("celery-postgres",)  # one runtime is enough here: see tests/e2e/conftest.py

GUEST, OUTSIDER, APP_USER, PARTNER = "U0GUEST", "U0OUT", "U0APP", "U0PARTNER"


@pytest.fixture
def team(slack: SlackStandIn) -> SlackStandIn:
    """Ana and Bob are in the channel; a guest is in it too; someone else is not; an app is."""
    slack.add_user(GUEST, "gus", "Gus Guest", guest=True)
    slack.add_user(OUTSIDER, "olga", "Olga Outside")
    slack.add_user(APP_USER, "zap", "Zapier", is_bot=True)
    slack.add_user(PARTNER, "pat", "Pat Partner", team_id="T0OTHERORG")  # in the channel over Slack Connect
    slack.set_members(CHANNEL, {"U0ANA", "U0BOB", GUEST, APP_USER, PARTNER})
    return slack


def told(slack: SlackStandIn, user: str, words: str) -> bool:
    private = [e["text"] for e in slack.ephemerals if e["user"] == user]
    dms = [m["text"] for m in slack.messages(user)] if user in slack.channels else []
    return any(words in text for text in private + dms)


def submit_tags(app: AppProcess, slack: SlackStandIn, *, user: str, typed: str, conversation_id: int) -> Any:
    modal = {
        "type": "modal",
        "callback_id": ids.TAGS_MODAL,
        "private_metadata": str(conversation_id),
        "title": {"type": "plain_text", "text": "Tags"},
        "blocks": [],
    }
    return app.slack_interaction(
        {
            "type": "view_submission",
            "team": {"id": TEAM, "domain": "threadline-test"},
            "user": {"id": user, "name": user.lower(), "team_id": TEAM},
            "api_app_id": "A0THREADLINE",
            "token": "legacy",
            "trigger_id": slack.issue_trigger_id(),
            "view": {
                **modal,
                "id": "V00000009",
                "team_id": TEAM,
                "state": {
                    "values": {
                        ids.NEW_TAGS_BLOCK: {
                            ids.NEW_TAGS_ACTION: {"type": "plain_text_input", "value": typed}
                        }
                    }
                },
            },
        }
    )


def test_guests_apps_and_outsiders_change_nothing_and_are_told_why(
    app: AppProcess, team: SlackStandIn, graph: GraphStandIn
):
    slack = team
    lead_writes(app, "I'd like a demo", message_id="wamid.who")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    card_ts = card_of(slack)["ts"]

    def clicks(user: str, action_id: str, **extra: Any) -> None:
        action = {**card_action(slack, action_id), **extra}
        payload = block_action(user=user, card_ts=card_ts, action=action, trigger_id=slack.issue_trigger_id())
        assert app.slack_interaction(payload).status_code == 200

    clicks(GUEST, ids.CLOSE)
    clicks(OUTSIDER, ids.TAKE_OVER)
    clicks(APP_USER, ids.TAKE_OVER)
    clicks(PARTNER, ids.CLOSE)
    clicks(GUEST, ids.VIEW_LEAD)
    clicks(OUTSIDER, ids.EDIT_TAGS)
    clicks("U0ANA", ids.ASSIGN, selected_user=GUEST)  # a guest cannot be given a conversation either
    slack.wait_for(lambda: told(slack, GUEST, "Guests can't"))
    slack.wait_for(lambda: told(slack, OUTSIDER, "join the channel"))
    slack.wait_for(lambda: told(slack, APP_USER, "Only people"))
    slack.wait_for(lambda: told(slack, PARTNER, "Only members of this workspace"))
    slack.wait_for(lambda: told(slack, "U0ANA", "Not assigned: Guests can't"))

    conversation_id = conversation(app).id
    refused = submit_tags(app, slack, user=OUTSIDER, typed="hijacked", conversation_id=conversation_id)
    assert refused.status_code == 200 and "join the channel" in json.dumps(refused.json())

    current = conversation(app)
    assert (current.status.value, current.ai_mode.value, current.assignee_id) == ("open", "manual", None)
    assert current.tags == [] and slack.opened_views == []
    with app.database() as db, db.sessions() as session:
        assert session.query(Event).filter(Event.kind != "created").count() == 0
    assert slack.calls_to("chat.update") == []  # the card never had a reason to change

    clicks("U0ANA", ids.TAKE_OVER)  # and a member still can
    slack.wait_for(lambda: "<@U0ANA>" in json.dumps(slack.message(CHANNEL, card_ts)))


def test_a_guests_thread_reply_never_reaches_the_lead(
    app: AppProcess, team: SlackStandIn, graph: GraphStandIn
):
    slack = team
    lead_writes(app, "hello", message_id="wamid.guest")
    slack.wait_for(lambda: len(thread(slack)) == 1)

    rep_says(app, slack, "I'm the guest, buy now!", user=GUEST)
    slack.wait_for(lambda: told(slack, GUEST, "Not sent to the lead"))
    rep_says(app, slack, "Hi, Ana here", user="U0ANA")  # once this is sent, the guest's had its chance

    graph.wait_for(lambda: len(graph.sent) == 1)
    assert [m.body["text"]["body"] for m in graph.sent] == ["Hi, Ana here"]
    with app.database() as db, db.sessions() as session:
        assert [m.text for m in session.query(Message).filter_by(direction="outbound")] == ["Hi, Ana here"]


def test_a_retry_from_outside_the_channel_sends_nothing(
    app: AppProcess, team: SlackStandIn, graph: GraphStandIn
):
    slack = team
    lead_writes(app, "hello", message_id="wamid.retry")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    graph.fail_next(131047)
    ts = rep_says(app, slack, "Still there?")
    slack.wait_for(lambda: any("24 hours" in m["text"] for m in thread(slack)))
    notice = next(m for m in thread(slack) if "24 hours" in m["text"])
    retry = next(e for b in notice["blocks"] if b["type"] == "actions" for e in b["elements"])
    card_ts = card_of(slack)["ts"]
    payload = {
        **block_action(user=OUTSIDER, card_ts=card_ts, action=retry),
        "container": {
            "type": "message",
            "message_ts": notice["ts"],
            "thread_ts": card_ts,
            "channel_id": CHANNEL,
        },
    }
    assert app.slack_interaction(payload).status_code == 200
    slack.wait_for(lambda: told(slack, OUTSIDER, "join the channel"))
    assert graph.sent == []
    with app.database() as db, db.sessions() as session:
        assert session.query(Message).filter_by(slack_ts=ts).one().delivery_status.value == "failed"


def test_a_tags_submit_is_bounded(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "hello", message_id="wamid.tags")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    conversation_id = conversation(app).id

    flood = ", ".join(f"tag{i}" for i in range(300))
    refused = submit_tags(app, slack, user="U0ANA", typed=flood, conversation_id=conversation_id)
    assert refused.status_code == 200
    answer = refused.json()
    assert answer["response_action"] == "errors" and "at most 50 tags" in json.dumps(answer)
    eleven = submit_tags(
        app, slack, user="U0ANA", typed=", ".join(f"t{i}" for i in range(11)), conversation_id=conversation_id
    )
    assert "At most 10 new tags" in json.dumps(eleven.json())
    with app.database() as db, db.sessions() as session:
        assert session.get_one(Conversation, conversation_id).tags == []

    fine = submit_tags(app, slack, user="U0ANA", typed="vip, demo", conversation_id=conversation_id)
    assert fine.status_code == 200
    slack.wait_for(lambda: "vip" in json.dumps(slack.message(CHANNEL, card_of(slack)["ts"])))


def test_app_home_shows_only_what_the_reader_may_act_on(app: AppProcess, team: SlackStandIn):
    slack = team
    lead_writes(app, "hello", message_id="wamid.home", name="Secret Lead")
    slack.wait_for(lambda: len(thread(slack)) == 1)

    def opens_home(user: str) -> str:
        event = {"type": "app_home_opened", "user": user, "channel": "D0X", "tab": "home", "event_ts": "1.1"}
        assert app.slack_event(event).status_code == 200
        slack.wait_for(lambda: user in slack.published_views)
        return json.dumps(slack.published_views[user])

    member_view, guest_view, outsider_view = opens_home("U0BOB"), opens_home(GUEST), opens_home(OUTSIDER)
    assert "Secret Lead" in member_view and "Unassigned (1)" in member_view
    assert "Secret Lead" not in guest_view and "Guests can't" in guest_view
    assert "Secret Lead" not in outsider_view and "Unassigned (0)" in outsider_view
