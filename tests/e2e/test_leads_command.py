"""`/leads` through the real endpoint, signed as Slack signs it, on both runtimes: the private list and
its pages (Previous/Next replace it through the click's response_url), search, stats, help and errors;
hostile lead data still gives valid Block Kit; nobody sees conversations of a channel they are not in."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.blocks import ids
from core.models import Author, Conversation, Direction, Lead, Message, Status, Tag, utcnow
from tests.e2e.conftest import running_app
from tests.e2e.harness import CHANNEL, TEAM, AppProcess
from tests.e2e.test_whatsapp_slack import lead_writes
from tests.standins.slack_api import MESSAGE_BLOCKS, SlackApiFailure, SlackStandIn, _check_blocks

RUNTIMES = ("celery-postgres",)  # one runtime is enough here: see tests/e2e/conftest.py

ROUTED = "C0WALEADS"  # WhatsApp leads live here; only Ana is in it
GUEST = "U0GUEST"


def leads(app: AppProcess, text: str, *, user: str = "U0ANA") -> dict[str, Any]:
    """The command's private answer, checked as Slack checks a message's blocks."""
    response = app.slack_command(text, user_id=user)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["response_type"] == "ephemeral" and answer["text"]
    valid(answer)
    return answer


def valid(message: dict[str, Any]) -> None:
    try:
        _check_blocks("/leads", message.get("blocks", []), MESSAGE_BLOCKS)
    except SlackApiFailure as failure:
        pytest.fail(failure.violation or failure.error)


def shown(message: dict[str, Any]) -> str:
    return message["text"] + json.dumps(message.get("blocks") or [], ensure_ascii=False)


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        element["action_id"]: element
        for block in message.get("blocks") or []
        if block["type"] == "actions"
        for element in block["elements"]
    }


def page_click(app: AppProcess, button: dict[str, Any], *, user: str = "U0ANA") -> None:
    """A click on Previous/Next in the ephemeral list, as Slack sends it."""
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "threadline-test"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0THREADLINE",
        "token": "legacy",
        "container": {
            "type": "message",
            "message_ts": "1700000000.999999",
            "channel_id": CHANNEL,
            "is_ephemeral": True,
        },
        "trigger_id": "1.2.3",
        "channel": {"id": CHANNEL, "name": "leads"},
        "response_url": app.response_url("actions"),
        "actions": [{**button, "block_id": ids.LEADS_PAGES_BLOCK, "action_ts": str(time.time())}],
    }
    assert app.slack_interaction(payload).status_code == 200


def seed(app: AppProcess, count: int, *, slack_channel: str = CHANNEL) -> None:
    """Conversations already in Slack (their cards posted), newest first by number."""
    now = utcnow()
    with app.database() as db, db.transaction() as session:
        for number in range(count):
            at = now - timedelta(minutes=number + 1)
            conversation = Conversation(
                lead=Lead(name=f"Lead {number:02d}", company=f"Company {number:02d}"),
                channel="whatsapp",
                channel_account="PHONE",
                provider_thread_id=f"seed-{slack_channel}-{number}",
                slack_channel=slack_channel,
                slack_thread_ts=f"1690000000.{number:06d}",
                status=Status.OPEN,
                last_activity_at=at,
                unread_count=number % 3,
            )
            session.add(conversation)
            session.flush()
            session.add(
                Message(
                    conversation_id=conversation.id,
                    channel="whatsapp",
                    direction=Direction.INBOUND,
                    author=Author.LEAD,
                    text=f"question number {number}",
                    created_at=at,
                )
            )


def test_the_list_pages_with_next_and_previous_replacing_itself(app: AppProcess, slack: SlackStandIn):
    seed(app, 12)
    first = leads(app, "")
    assert "1–10 of 12" in first["text"]
    assert "Lead 00" in shown(first) and "Lead 09" in shown(first) and "Lead 10" not in shown(first)
    assert "https://slack.com/archives/C0LEADS/p1690000000000000" in shown(first)  # the thread, no API call
    assert "question number 0" in shown(first) and "Company 00" in shown(first)
    assert set(buttons(first)) == {ids.LEADS_NEXT}

    page_click(app, buttons(first)[ids.LEADS_NEXT])
    slack.wait_for(lambda: len(slack.responses) == 1)
    second = slack.responses[0]
    assert second["replace_original"] is True and second["response_type"] == "ephemeral"
    assert "11–12 of 12" in second["text"] and "Lead 11" in shown(second) and "Lead 09" not in shown(second)
    assert set(buttons(second)) == {ids.LEADS_PREVIOUS}

    page_click(app, buttons(second)[ids.LEADS_PREVIOUS])
    slack.wait_for(lambda: len(slack.responses) == 2)
    assert "1–10 of 12" in slack.responses[1]["text"]

    searched = leads(app, "question number 11")  # every word, in the messages
    assert "1–1 of 1" in searched["text"] and "Lead 11" in shown(searched)


def test_help_stats_and_mistakes_get_a_private_answer(app: AppProcess, slack: SlackStandIn):
    seed(app, 2)
    assert "campaign:NAME" in leads(app, "help")["text"]
    for mistake, word in [
        ("mode:robot", "mode:robot"),
        ("period:year", "period:year"),
        ("foo:bar", "foo:bar"),
    ]:
        answer = leads(app, mistake)
        assert f"`{word}`" in answer["text"] and "campaign:NAME" in answer["text"]
    stats = shown(leads(app, "stats week"))
    assert "Conversations" in stats and "First response" in stats and "Satisfaction" in stats
    assert "Nothing is assigned to you yet." in leads(app, "mine")["text"]
    assert "No conversations match" in leads(app, "nothing-like-this")["text"]


def test_hostile_lead_data_still_gives_valid_blocks(app: AppProcess, slack: SlackStandIn):
    lead_writes(
        app, "<!channel> pricing " + "x" * 9000, message_id="wamid.hostile", name="<@U0BOB> " + "N" * 10_000
    )
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1)
    with app.database() as db, db.transaction() as session:
        conversation = session.query(Conversation).one()
        conversation.tags = [Tag(name=f"tag{number:03d}") for number in range(500)]
        conversation.lead.company = "<https://evil.example|Your Bank>"
    answer = leads(app, "pricing")
    text = shown(answer)
    assert "1–1 of 1" in answer["text"]
    assert "<!channel>" not in text and "<@U0BOB>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text and "&lt;@U0BOB&gt;" in text
    assert "tag:tag001" not in text
    assert "1–1 of 1" in leads(app, "tag:tag499 pricing")["text"]


@pytest.fixture
def routed(app_env: dict[str, str], slack: SlackStandIn, tmp_path: Path) -> Iterator[AppProcess]:
    slack.add_channel(ROUTED, "whatsapp-leads")
    slack.set_members(ROUTED, {"U0ANA"})
    slack.add_user(GUEST, "gus", "Gus Guest", guest=True)
    with running_app(
        {**app_env, "THREADLINE_ROUTES": f"whatsapp={ROUTED}"}, tmp_path / "threadline.log"
    ) as app:
        yield app


def test_nobody_sees_conversations_of_a_channel_they_are_not_in(routed: AppProcess, slack: SlackStandIn):
    app = routed
    lead_writes(app, "Secret pricing question", message_id="wamid.secret", name="Secret Lead")
    slack.wait_for(lambda: len(slack.messages(ROUTED)) == 1)
    seed(app, 1)  # one conversation in #leads, where everyone is

    ana, bob = shown(leads(app, "")), shown(leads(app, "", user="U0BOB"))
    assert "Secret Lead" in ana and "Lead 00" in ana
    assert "Secret Lead" not in bob and "Lead 00" in bob
    assert "Secret" not in shown(leads(app, "secret", user="U0BOB"))
    assert "Secret" not in shown(leads(app, "stats all", user="U0BOB")) and "*Conversations*\\n1" in shown(
        leads(app, "stats all", user="U0BOB")
    )
    guest = leads(app, "", user=GUEST)
    assert "Guests can't" in guest["text"] and "Lead 00" not in shown(guest)

    seed(app, 11, slack_channel=ROUTED)
    first = leads(app, "")  # Ana's list has a second page; Bob replays her Next: he still sees only his
    page_click(app, buttons(first)[ids.LEADS_NEXT], user="U0BOB")
    slack.wait_for(lambda: len(slack.responses) == 1)
    assert "Secret Lead" not in shown(slack.responses[0]) and "No more conversations" in shown(
        slack.responses[0]
    )
