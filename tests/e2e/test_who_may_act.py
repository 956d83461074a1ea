"""Only full members of the conversation's channel act on it: guests, apps and outsiders are told
privately and change nothing — buttons, modals, Retry, App Home, /leads and thread replies alike.
Every interaction the Bolt app registers is enumerated, and each must have an outsider case here."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import build_bolt_app
from bot.blocks import ids
from core.models import AIDecision, Conversation, Event, KnowledgeEntry, Member, Message
from tests.e2e.harness import CHANNEL, TEAM, AppProcess, block_action, interaction
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


def said_to(slack: SlackStandIn, user: str) -> list[str]:
    """What the app told `user` privately: ephemerals, and DMs (to someone who is not in the channel)."""
    private = [e["text"] for e in slack.ephemerals if e["user"] == user]
    return private + ([m["text"] for m in slack.messages(user)] if user in slack.channels else [])


def told(slack: SlackStandIn, user: str, words: str) -> bool:
    return any(words in text for text in said_to(slack, user))


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
            **interaction("view_submission", user),
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

    every_other_interaction_refuses_outsiders(app, slack, graph)

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


# --- every registered interaction has an outsider case ---------------------------------------------------

# Which test above or below refuses an outsider (a guest, an app or bot, someone not in the channel) for
# each interaction the Bolt app registers. A new action_id, view or command without a line here fails
# test_every_registered_interaction_has_an_outsider_case.
OUTSIDER_CASES = {
    f"action:{ids.TAKE_OVER}": "test_guests_apps_and_outsiders_change_nothing_and_are_told_why",
    f"action:{ids.CLOSE}": "test_guests_apps_and_outsiders_change_nothing_and_are_told_why",
    f"action:{ids.VIEW_LEAD}": "test_guests_apps_and_outsiders_change_nothing_and_are_told_why",
    f"action:{ids.EDIT_TAGS}": "test_guests_apps_and_outsiders_change_nothing_and_are_told_why",
    f"view:{ids.TAGS_MODAL}": "test_guests_apps_and_outsiders_change_nothing_and_are_told_why",
    f"action:{ids.RETRY_DELIVERY}": "test_a_retry_from_outside_the_channel_sends_nothing",
    "event:message": "test_a_guests_thread_reply_never_reaches_the_lead",
    "event:app_home_opened": "test_app_home_shows_only_what_the_reader_may_act_on",
    **{
        f"action:{action_id}": "test_guests_apps_and_outsiders_change_nothing_and_are_told_why"
        for action_id in (
            ids.RESUME_AI,
            ids.MANUAL_ONLY,
            ids.REOPEN,
            ids.ASSIGN,
            ids.EDIT_LEAD,
            ids.LEAD_MODAL_EDIT,
            ids.SHOW_FULL_MESSAGE,
            ids.SEND_TEMPLATE,
            ids.AI_WHY,
            ids.AI_WHY_DECISION,
            ids.AI_UP,
            ids.AI_DOWN,
            ids.KNOWLEDGE_APPROVE,
            ids.KNOWLEDGE_REJECT,
            ids.HOME_TAKE,
            ids.HOME_NOTIFICATIONS,
            ids.LEADS_PREVIOUS,
            ids.LEADS_NEXT,
        )
    },
    f"view:{ids.AI_CORRECTION_MODAL}": "test_guests_apps_and_outsiders_change_nothing_and_are_told_why",
    f"view:{ids.LEAD_EDIT_MODAL}": "test_guests_apps_and_outsiders_change_nothing_and_are_told_why",
    "command:^/": "test_guests_apps_and_outsiders_change_nothing_and_are_told_why",
}
LISTENER_KINDS = (
    "action",
    "block_action",
    "attachment_action",
    "dialog_submission",
    "dialog_cancellation",
    "dialog_suggestion",
    "options",
    "block_suggestion",
    "view",
    "view_submission",
    "view_closed",
    "command",
    "shortcut",
    "global_shortcut",
    "message_shortcut",
    "event",
    "message",
    "function",
)


def registered_interactions() -> set[str]:
    """`kind:constraint` for every listener build_bolt_app registers, recorded as it registers them."""
    found: set[str] = set()

    def recording(kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def register(self: AsyncApp, constraint: Any = None, *args: Any, **kwargs: Any) -> Any:
            shown = constraint.pattern if isinstance(constraint, re.Pattern) else constraint
            found.add(f"{'view' if kind.startswith('view') else kind}:{shown}")
            return original(self, constraint, *args, **kwargs)

        return register

    with pytest.MonkeyPatch.context() as patch:
        for kind in LISTENER_KINDS:
            if hasattr(AsyncApp, kind):
                patch.setattr(AsyncApp, kind, recording(kind, getattr(AsyncApp, kind)))
        ctx = SimpleNamespace(client=AsyncWebClient(token="xoxb-enumerating"), ai_available=False, csat=False)
        build_bolt_app(signing_secret="enumerating", ctx=ctx)  # type: ignore[arg-type]
    return found


@pytest.mark.parametrize("runtime_env", [None], ids=["no-app"])  # needs no running app
def test_every_registered_interaction_has_an_outsider_case(runtime_env: None):
    registered = registered_interactions()
    assert f"action:{ids.TAKE_OVER}" in registered and "command:^/" in registered  # it did enumerate
    tests = {name for name in globals() if name.startswith("test_")}
    assert set(OUTSIDER_CASES.values()) <= tests
    assert sorted(registered - set(OUTSIDER_CASES)) == [], "interactions with no outsider-refused case"


def seed_ai_rows(app: AppProcess, conversation_id: int) -> tuple[int, int]:
    """An AI decision on the lead's message and a pending correction of it: (decision id, entry id)."""
    with app.database() as db, db.sessions() as session:
        message = session.query(Message).filter_by(conversation_id=conversation_id).first()
        assert message is not None
        decision = AIDecision(
            conversation_id=conversation_id,
            answered_message_id=message.id,
            outcome="replied",
            model="gpt-test",
        )
        session.add(decision)
        session.flush()
        entry = KnowledgeEntry(
            title="Pricing", body="Ask sales.", status="pending", source="correction", decision_id=decision.id
        )
        session.add(entry)
        session.commit()
        return decision.id, entry.id


def every_other_interaction_refuses_outsiders(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
) -> None:
    """The rest of the registered interactions, each by someone who may not act, on the open
    conversation of the calling test (one app for all: CI time): told why, privately; nothing changes."""
    card_ts = card_of(slack)["ts"]
    conversation_id = conversation(app).id
    before = {user: len(said_to(slack, user)) for user in (OUTSIDER, APP_USER, GUEST)}
    decision_id, entry_id = seed_ai_rows(app, conversation_id)
    with app.database() as db, db.sessions() as session:
        message_id = session.query(Message).filter_by(conversation_id=conversation_id).one().id

    def clicks(user: str, action_id: str, value: str, **extra: Any) -> None:
        action = {"type": "button", "action_id": action_id, "block_id": "b", "value": value, **extra}
        payload = {
            **block_action(user=user, card_ts=card_ts, action=action, trigger_id=slack.issue_trigger_id()),
            "response_url": app.response_url("actions"),
        }
        assert app.slack_interaction(payload).status_code == 200

    def in_home(user: str, action_id: str, **action: Any) -> None:
        payload = {
            **interaction("block_actions", user),
            "trigger_id": slack.issue_trigger_id(),
            "container": {"type": "view", "view_id": "V0HOME"},
            "view": {"id": "V0HOME", "type": "home", "team_id": TEAM, "blocks": [], "state": {"values": {}}},
            "actions": [{"action_id": action_id, "block_id": "b", "type": "button", **action}],
        }
        assert app.slack_interaction(payload).status_code == 200

    thread_actions = [
        (ids.RESUME_AI, "1"),
        (ids.MANUAL_ONLY, "1"),
        (ids.REOPEN, "1"),
        (ids.EDIT_LEAD, str(conversation_id)),
        (ids.SHOW_FULL_MESSAGE, str(message_id)),
        (ids.SEND_TEMPLATE, json.dumps({"m": message_id, "n": "hello_world", "l": "en_US"})),
        (ids.AI_WHY, str(message_id)),
        (ids.AI_WHY_DECISION, str(decision_id)),
        (ids.AI_UP, str(message_id)),
        (ids.AI_DOWN, str(message_id)),
        (ids.KNOWLEDGE_APPROVE, str(entry_id)),
        (ids.KNOWLEDGE_REJECT, str(entry_id)),
    ]
    for action_id, value in thread_actions:
        clicks(OUTSIDER, action_id, value)
        clicks(APP_USER, action_id, value)
    clicks(OUTSIDER, ids.ASSIGN, "", selected_user="U0BOB")
    clicks(GUEST, ids.LEAD_MODAL_EDIT, str(conversation_id))
    in_home(OUTSIDER, ids.HOME_TAKE, value=str(conversation_id))
    in_home(GUEST, ids.HOME_NOTIFICATIONS, selected_options=[{"value": ids.NOTIFY_ON_MESSAGE}])

    refused = [
        submit_view(app, slack, OUTSIDER, ids.AI_CORRECTION_MODAL, str(decision_id),
                    {ids.AI_CORRECTION_BLOCK: {ids.AI_CORRECTION_ACTION: "Say 90% off"}}),
        submit_view(app, slack, OUTSIDER, ids.LEAD_EDIT_MODAL, str(conversation_id),
                    {field: {ids.LEAD_FIELD_ACTION: "Hijacked"} for field in ("name", "company")}),
    ]  # fmt: skip
    for response in refused:
        assert response.status_code == 200 and "join the channel" in json.dumps(response.json())

    command = app.slack_command("", user_id=GUEST)
    assert command.status_code == 200 and "Guests can't" in json.dumps(command.json())
    assert "I'd like a demo" not in json.dumps(command.json())
    clicks(GUEST, ids.LEADS_NEXT, json.dumps({"q": "", "o": 25}))
    clicks(GUEST, ids.LEADS_PREVIOUS, json.dumps({"q": "", "o": 0}))

    # Each one said why, privately (an ephemeral, or a DM to someone not in the channel)…
    expected = {OUTSIDER: len(thread_actions) + 1, APP_USER: len(thread_actions), GUEST: 1}

    def new(user: str) -> list[str]:
        return said_to(slack, user)[before[user] :]

    slack.wait_for(lambda: all(len(new(user)) >= count for user, count in expected.items()))
    slack.wait_for(lambda: OUTSIDER in slack.published_views and GUEST in slack.published_views)
    slack.wait_for(lambda: len(slack.responses) >= 2)
    assert "join the channel" in json.dumps(slack.published_views[OUTSIDER])
    assert "Guests can't" in json.dumps(slack.published_views[GUEST])
    assert all("Guests can't" in response["text"] for response in slack.responses)
    for user, words in ((OUTSIDER, "join the channel"), (APP_USER, "Only people"), (GUEST, "Guests can't")):
        said = new(user)
        assert len(said) == expected[user] and all(words in text for text in said), (user, said)

    # …and nothing changed.
    current = conversation(app)
    assert (current.status.value, current.ai_mode.value, current.assignee_id) == ("open", "manual", None)
    assert current.lead.name != "Hijacked" and slack.opened_views == [] and graph.sent == []
    with app.database() as db, db.sessions() as session:
        assert session.query(Event).filter(Event.kind != "created").count() == 0
        assert session.query(Message).filter_by(direction="outbound").count() == 0
        assert session.get_one(KnowledgeEntry, entry_id).status == "pending"
        assert session.get_one(AIDecision, decision_id).feedback is None
        assert session.query(KnowledgeEntry).count() == 1  # no correction saved
        assert (
            session.query(Member).filter(Member.slack_user_id.in_([GUEST, OUTSIDER, APP_USER])).count() == 0
        )
    assert slack.calls_to("chat.update") == []


def submit_view(
    app: AppProcess, slack: SlackStandIn, user: str, callback_id: str, metadata: str, values: dict[str, Any]
) -> Any:
    state = {
        block: {action: {"type": "plain_text_input", "value": value} for action, value in actions.items()}
        for block, actions in values.items()
    }
    return app.slack_interaction(
        {
            **interaction("view_submission", user),
            "trigger_id": slack.issue_trigger_id(),
            "view": {
                "id": "V00000010",
                "team_id": TEAM,
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": metadata,
                "title": {"type": "plain_text", "text": "x"},
                "blocks": [],
                "state": {"values": state},
            },
        }
    )
