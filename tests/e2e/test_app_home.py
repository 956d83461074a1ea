"""App Home and notifications through the real endpoint, on both runtimes: the Home tab's sections,
Take it, the notification checkboxes, the DM when my lead writes, and the SLA reminder — once per wait,
also across a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.blocks import ids
from core.models import Conversation, Member, Outbox
from tests.e2e.conftest import running_app
from tests.e2e.harness import CHANNEL, TEAM, AppProcess
from tests.e2e.test_card_buttons import conversation
from tests.e2e.test_whatsapp_slack import card_text, lead_writes, thread
from tests.standins.slack_api import SlackStandIn

RUNTIMES = ("celery-postgres",)  # one runtime is enough here: see tests/e2e/conftest.py

ANA, BOB = "U0ANA", "U0BOB"


def opens_home(app: AppProcess, slack: SlackStandIn, user: str, *, until: str = "Notifications") -> str:
    event = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home", "event_ts": "1.1"}
    assert app.slack_event(event).status_code == 200
    return home_shows(slack, user, until)


def home_shows(slack: SlackStandIn, user: str, *words: str) -> str:
    """Wait until the user's Home tab says every one of `words`; returns the view as JSON."""
    slack.wait_for(lambda: all(word in json.dumps(slack.published_views.get(user, {})) for word in words))
    return json.dumps(slack.published_views[user])


def home_click(app: AppProcess, slack: SlackStandIn, user: str, action: dict[str, Any]) -> None:
    """A click on an element of the user's Home tab, as Slack sends it."""
    view = slack.published_views[user]
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "threadline-test"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0THREADLINE",
        "token": "legacy",
        "container": {"type": "view", "view_id": "V00000001"},
        "trigger_id": slack.issue_trigger_id(),
        "view": {**view, "id": "V00000001", "team_id": TEAM},
        "actions": [{**action, "action_ts": str(time.time())}],
    }
    response = app.slack_interaction(payload)
    assert response.status_code == 200, response.text


def take_it(slack: SlackStandIn, user: str) -> dict[str, Any]:
    for block in slack.published_views[user]["blocks"]:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == ids.HOME_TAKE:
            return {**accessory, "block_id": block["block_id"]}
    raise AssertionError("no Take it button on the Home tab")


def tick(slack: SlackStandIn, user: str, *values: str) -> dict[str, Any]:
    """The notification checkboxes with exactly `values` ticked."""
    block = next(
        b for b in slack.published_views[user]["blocks"] if b.get("block_id") == ids.HOME_NOTIFICATIONS_BLOCK
    )
    checkboxes = block["elements"][0]
    chosen = [option for option in checkboxes["options"] if option["value"] in values]
    return {
        "type": "checkboxes",
        "action_id": ids.HOME_NOTIFICATIONS,
        "block_id": block["block_id"],
        "selected_options": chosen,
    }


def ticked(slack: SlackStandIn, user: str) -> list[str]:
    """The notification options the user's Home tab shows ticked."""
    blocks = slack.published_views.get(user, {}).get("blocks", [])
    block = next((b for b in blocks if b.get("block_id") == ids.HOME_NOTIFICATIONS_BLOCK), None)
    return [] if block is None else [o["value"] for o in block["elements"][0].get("initial_options", [])]


def dm_blocks(slack: SlackStandIn, user: str) -> list[str]:
    return [json.dumps(m.get("blocks") or []) for m in slack.messages(user)]


def test_home_shows_the_queue_and_take_it_makes_it_mine(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "I'd like a demo", message_id="wamid.home1", name="Jane <!channel> Doe")
    slack.wait_for(lambda: len(thread(slack)) == 1)

    home = opens_home(app, slack, BOB)
    assert "Your open conversations (0)" in home and "Nothing assigned to you." in home
    assert "Unassigned (1)" in home and "Jane &lt;!channel&gt; Doe" in home and "<!channel>" not in home
    assert "Your last 7 days" in home and "Notifications" in home
    assert f"/archives/{CHANNEL}/p" in home  # each row links to its thread

    button = take_it(slack, BOB)
    home_click(app, slack, BOB, button)
    home = home_shows(slack, BOB, "is yours now", "Your open conversations (1)", "Unassigned (0)")
    assert conversation(app).assignee.slack_user_id == BOB
    slack.wait_for(lambda: "<@U0BOB>" in card_text(slack))

    opens_home(app, slack, ANA)
    home_click(app, slack, ANA, button)  # Ana's click on what she saw a moment ago
    home_shows(slack, ANA, "<@U0BOB> already took the conversation")
    assert conversation(app).assignee.slack_user_id == BOB


def test_an_outsider_cannot_take_it(app: AppProcess, slack: SlackStandIn):
    slack.add_user("U0OUT", "olga", "Olga Outside")
    slack.set_members(CHANNEL, {ANA, BOB})
    lead_writes(app, "hello", message_id="wamid.home2")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    opens_home(app, slack, ANA)
    button = take_it(slack, ANA)

    opens_home(app, slack, "U0OUT")
    home_click(app, slack, "U0OUT", button)  # a forged click with a button Olga was never shown
    home_shows(slack, "U0OUT", "join the channel")
    assert conversation(app).assignee_id is None


def test_malformed_home_clicks_are_refused_or_answered_never_a_500(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "hello", message_id="wamid.home3")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    opens_home(app, slack, ANA)
    button, boxes = take_it(slack, ANA), tick(slack, ANA)
    clicks = [
        {**button, "value": "1; DROP TABLE conversation"},
        {**button, "value": None},
        {**boxes, "selected_options": "all"},
        {**boxes, "selected_options": [{"value": ["assign"]}, 7]},
        {**boxes, "selected_options": [{"value": {"x": 1}}]},  # nothing it knows is ticked
        {**button, "value": "99999"},  # no such conversation: told so
    ]
    for action in clicks:
        response = app.slack_interaction(
            {
                "type": "block_actions",
                "team": {"id": TEAM, "domain": "threadline-test"},
                "user": {"id": ANA, "name": "ana", "team_id": TEAM},
                "api_app_id": "A0THREADLINE",
                "token": "legacy",
                "container": {"type": "view", "view_id": "V00000001"},
                "trigger_id": slack.issue_trigger_id(),
                "actions": [action],
            }
        )
        assert response.status_code in {200, 400}, (action, response.text)
    home_shows(slack, ANA, "no longer in Threadline")
    assert conversation(app).assignee_id is None
    member = _member(app, ANA)
    assert member is None or (member.notify_on_assign, member.notify_on_message) in {
        (True, True),
        (False, False),
    }


def test_my_lead_writing_dms_me_unless_i_turned_it_off(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "hello", message_id="wamid.dm1")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    opens_home(app, slack, ANA)
    home_click(app, slack, ANA, take_it(slack, ANA))
    home_shows(slack, ANA, "is yours now")

    home_click(app, slack, ANA, tick(slack, ANA, ids.NOTIFY_ON_ASSIGN))  # lead messages off
    slack.wait_for(lambda: ticked(slack, ANA) == [ids.NOTIFY_ON_ASSIGN])  # the tab shows it at once
    assert not _member(app, ANA).notify_on_message
    lead_writes(app, "muted question", message_id="wamid.dm2")
    slack.wait_for(lambda: len(thread(slack)) == 2)

    home_click(app, slack, ANA, tick(slack, ANA, ids.NOTIFY_ON_ASSIGN, ids.NOTIFY_ON_MESSAGE))
    slack.wait_for(lambda: ticked(slack, ANA) == [ids.NOTIFY_ON_ASSIGN, ids.NOTIFY_ON_MESSAGE])
    lead_writes(app, "loud question", message_id="wamid.dm3")
    slack.wait_for(lambda: any("loud question" in blocks for blocks in dm_blocks(slack, ANA)))
    assert not any("muted question" in blocks for blocks in dm_blocks(slack, ANA))
    [dm] = [m for m in slack.messages(ANA) if "loud question" in json.dumps(m.get("blocks"))]
    assert dm["text"] == "Jane Doe sent a message on WhatsApp." and f"/archives/{CHANNEL}/p" in json.dumps(dm)


def _member(app: AppProcess, slack_user_id: str) -> Member | None:
    with app.database() as db, db.sessions() as session:
        return session.query(Member).filter_by(slack_user_id=slack_user_id).one_or_none()


# --- the SLA reminder ------------------------------------------------------------------------------------


@pytest.fixture
def impatient_app(app_env: dict[str, str], tmp_path: Path) -> Iterator[AppProcess]:
    """The app with THREADLINE_SLA_HOURS at 1.8 seconds."""
    with running_app({**app_env, "THREADLINE_SLA_HOURS": "0.0005"}, tmp_path / "threadline.log") as process:
        yield process


def reminders_in(slack: SlackStandIn, lead: str) -> list[str]:
    card = next(m for m in slack.messages(CHANNEL) if lead in json.dumps(m))
    return [m["text"] for m in slack.replies(CHANNEL, card["ts"]) if m["text"].startswith(":alarm_clock:")]


def test_a_waiting_lead_is_reminded_once_and_not_again_after_a_restart(
    impatient_app: AppProcess, slack: SlackStandIn
):
    app = impatient_app
    lead_writes(app, "anyone?", message_id="wamid.sla1", name="First Lead")
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1)
    slack.wait_for(lambda: len(reminders_in(slack, "First Lead")) == 1)
    [reminder] = reminders_in(slack, "First Lead")
    assert reminder.startswith(":alarm_clock: <!here> First Lead has been waiting")

    app.stop()
    app.start()
    # A lead who starts waiting after the restart is reminded: the sweep runs again, and it reminds
    # nobody twice.
    lead_writes(app, "hello?", message_id="wamid.sla2", wa_id="15559990000", name="Second Lead")
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 2)
    slack.wait_for(lambda: len(reminders_in(slack, "Second Lead")) == 1)
    assert len(reminders_in(slack, "First Lead")) == 1
    with app.database() as db, db.sessions() as session:
        assert session.query(Outbox).filter_by(kind="remind_sla").count() == 2
        assert all(c.sla_reminded_at is not None for c in session.query(Conversation))
