"""View lead and Edit lead, clicked and submitted as Slack sends them, on both runtimes."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bot.blocks import ids
from core.models import Conversation, Event
from tests.e2e.harness import CHANNEL, AppProcess
from tests.e2e.test_card_buttons import card_action, conversation, wait_card
from tests.e2e.test_whatsapp_slack import card_text, click, lead_writes, rep_says, thread
from tests.standins.slack_api import SlackStandIn

RUNTIMES = ("embedded-sqlite",)  # one runtime is enough here: see tests/e2e/conftest.py


def open_modal(
    app: AppProcess, slack: SlackStandIn, action_id: str, *, user: str = "U0ANA"
) -> dict[str, Any]:
    opened = len(slack.opened_views)
    click(app, slack, card_action(slack, action_id), user=user, trigger_id=slack.issue_trigger_id())
    slack.wait_for(lambda: len(slack.opened_views) > opened)
    return slack.opened_views[-1]


def submit(
    app: AppProcess, slack: SlackStandIn, modal: dict[str, Any], typed: dict[str, str | None], *, user: str
) -> httpx.Response:
    """A view_submission as Slack sends it: every input block's value, null where left empty."""
    values = {
        block["block_id"]: {
            block["element"]["action_id"]: {"type": "plain_text_input", "value": typed.get(block["block_id"])}
        }
        for block in modal["blocks"]
        if block["type"] == "input"
    }
    payload = {
        "type": "view_submission",
        "team": {"id": "T0TEST", "domain": "threadline-test"},
        "user": {"id": user, "name": user.lower(), "team_id": "T0TEST"},
        "api_app_id": "A0THREADLINE",
        "token": "legacy",
        "trigger_id": slack.issue_trigger_id(),
        "view": {**modal, "id": "V00000009", "team_id": "T0TEST", "state": {"values": values}},
    }
    return app.slack_interaction(payload)


def test_view_lead_shows_contact_and_numbers(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "Hello", message_id="wamid.v1")
    lead_writes(app, "Any news?", message_id="wamid.v2")
    slack.wait_for(lambda: len(thread(slack)) == 2)
    note = rep_says(app, slack, "<@U0BOB> this one looks serious")  # an internal note
    slack.wait_for(lambda: "lock" in slack.reactions(CHANNEL, note))  # stored (the 🔒 follows the commit)

    shown = json.dumps(open_modal(app, slack, ids.VIEW_LEAD))
    for expected in (
        "Jane Doe",
        "+15551234567",
        "*Messages from the lead*\\n2",
        "*Messages to the lead*\\n0",
        "*Internal notes*\\n1",
        "*Conversations*\\n1",
        "only conversation",
    ):
        assert expected in shown, expected


def test_view_leads_edit_button_opens_the_form_on_top(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "Hello", message_id="wamid.v3")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    lead_modal = open_modal(app, slack, ids.VIEW_LEAD)
    button = next(
        {**element, "block_id": block.get("block_id", "b")}
        for block in lead_modal["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == ids.LEAD_MODAL_EDIT
    )
    clicked = {
        "type": "block_actions",
        "team": {"id": "T0TEST", "domain": "threadline-test"},
        "user": {"id": "U0ANA", "username": "ana", "name": "ana", "team_id": "T0TEST"},
        "api_app_id": "A0THREADLINE",
        "token": "legacy",
        "container": {"type": "view", "view_id": "V00000001"},
        "trigger_id": slack.issue_trigger_id(),
        "view": {**lead_modal, "id": "V00000001", "team_id": "T0TEST", "state": {"values": {}}},
        "actions": [{**button, "action_ts": "1700000000.1"}],
    }
    assert app.slack_interaction(clicked).status_code == 200
    slack.wait_for(lambda: len(slack.pushed_views) == 1)
    form = slack.pushed_views[0]
    assert form["callback_id"] == ids.LEAD_EDIT_MODAL and "Jane Doe" in json.dumps(form)

    response = submit(app, slack, form, {"name": "Jane Q. Doe", "phone": "+15551234567"}, user="U0ANA")
    assert response.json() == {"response_action": "clear"}  # both windows close: View lead is stale
    wait_card(slack, "Jane Q. Doe")


def test_edit_lead_saves_and_the_card_says_so(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "Hi, pricing please", message_id="wamid.e1", name="J.")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    modal = open_modal(app, slack, ids.EDIT_LEAD)
    assert "does not move this thread" in json.dumps(modal)

    typed = {
        "name": "Jane Doe",
        "company": "Acme <Corp>",
        "title": "CTO",
        "email": "jane@acme.test",
        "phone": "+1 555 123 4567",
        "campaign": "Spring Sale",
    }
    response = submit(app, slack, modal, typed, user="U0ANA")
    assert response.status_code == 200 and response.json() == {"response_action": "clear"}  # closes

    wait_card(slack, "Jane Doe", "Acme &lt;Corp&gt;", "jane@acme.test", "Spring Sale")
    assert "<Corp>" not in card_text(slack)
    saved = conversation(app)
    assert (saved.lead.name, saved.lead.phone, saved.campaign.name) == (
        "Jane Doe",
        "+15551234567",
        "Spring Sale",
    )
    with app.database() as db, db.sessions() as session:
        [event] = session.query(Event).filter_by(kind="lead").all()
        assert event.old["name"] == "J." and event.new["company"] == "Acme <Corp>"


def test_edit_lead_answers_bad_fields_next_to_them_and_changes_nothing(app: AppProcess, slack: SlackStandIn):
    lead_writes(app, "Hi", message_id="wamid.e2")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    modal = open_modal(app, slack, ids.EDIT_LEAD)

    response = submit(
        app, slack, modal, {"name": "Jane", "email": "not-an-email", "phone": "call me"}, user="U0ANA"
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors" and set(answer["errors"]) == {"email", "phone"}
    assert "email address" in answer["errors"]["email"]

    outsider = submit(app, slack, modal, {"name": "Hijacked"}, user="U0GHOST")
    assert outsider.status_code == 200 and outsider.json()["response_action"] == "errors"
    assert conversation(app).lead.name == "Jane Doe"
    with app.database() as db, db.sessions() as session:
        assert session.query(Event).filter_by(kind="lead").count() == 0
        assert session.query(Conversation).count() == 1
