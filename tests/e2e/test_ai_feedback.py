"""The AI's answers in Slack, through the real /slack/events endpoint on both runtimes: an AI message
is marked as the AI's, Why? opens its stored decision, 👎 asks for a correction, the correction is
posted in the thread for review and a teammate of the channel approves it — once, and only them.

The AI turn itself is committed through the engine's own use-case (core.actions.ai.do_ai_turn): these
tests are about the Slack face; the last one goes through the whole agent in the running app, against
the OpenAI-compatible stand-in (fixtures from tests/e2e/test_ai_agent_e2e.py)."""

from __future__ import annotations

import json
from typing import Any

from bot.blocks import ids
from core.actions.ai import AITurn, TurnResult, do_ai_turn
from core.actions.common import SYSTEM
from core.actions.conversation import do_resume_ai
from core.db import Database
from core.models import AIDecision, Conversation, KnowledgeEntry, KnowledgeStatus, Message
from core.outbox import release
from tests.e2e import test_ai_agent_e2e
from tests.e2e.harness import CHANNEL, TEAM, AppProcess, block_action
from tests.e2e.test_whatsapp_slack import card_of, lead_writes, thread
from tests.standins.slack_api import SlackStandIn

RUNTIMES = ("embedded-sqlite",)  # one runtime is enough here: see tests/e2e/conftest.py

TURN = AITurn(
    model="gpt-test",
    reply="The Pro plan is 49 EUR a month.",
    intent="pricing_question",
    confidence=0.82,
    reasoning="Answered from the pricing page.",
    knowledge=[{"id": None, "source": "pricing.md", "title": "Pricing"}],
    latency_ms=1234,
    prompt_tokens=812,
    completion_tokens=64,
)
OUTSIDER = "U0OLGA"
# The running app with its agent pointed at the OpenAI-compatible stand-in, as test_ai_agent_e2e has it.
ai_app, openai_api = test_ai_agent_e2e.ai_app, test_ai_agent_e2e.openai_api


def ai_answers(app: AppProcess, slack: SlackStandIn) -> tuple[TurnResult, dict[str, Any]]:
    """The lead asks, the AI answers (committed as the agent commits); the answer's thread entry."""
    lead_writes(app, "How much is the Pro plan?", message_id="wamid.ai.1")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    # Committed from this process, as `threadline simulate` does: the app's next sweep takes the work.
    db = Database(app.env["DATABASE_URL"], dispatch=lambda offers: release(db, offers))
    try:
        with db.sessions() as session:
            conversation = session.query(Conversation).one()
            asked = session.query(Message).one()
        db.run(lambda s: do_resume_ai(s, conversation.id, actor=SYSTEM, ai_available=True))
        turn = db.run(lambda s: do_ai_turn(s, conversation.id, asked.id, TURN))
    finally:
        db.dispose()
    slack.wait_for(lambda: len(thread(slack)) == 2)
    return turn, thread(slack)[1]


def element(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    for block in message.get("blocks") or []:
        for item in block.get("elements") or []:
            if item.get("action_id") == action_id:
                return {**item, "block_id": block.get("block_id", "")}
    raise AssertionError(f"no {action_id} on {message.get('text')!r}")


def click_in_thread(
    app: AppProcess, slack: SlackStandIn, message: dict[str, Any], action_id: str, *, user: str
) -> str:
    """A click on a button of a thread entry (not the card): Slack names both the entry and its thread."""
    trigger = slack.issue_trigger_id()
    payload = block_action(
        user=user, card_ts=message["ts"], action=element(message, action_id), trigger_id=trigger
    )
    payload["container"]["thread_ts"] = card_of(slack)["ts"]
    response = app.slack_interaction(payload)
    assert response.status_code == 200, response.text
    return trigger


def submit(app: AppProcess, view: dict[str, Any], values: dict[str, Any], *, user: str) -> dict[str, Any]:
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "threadline-test"},
        "user": {"id": user, "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0THREADLINE",
        "token": "legacy",
        "trigger_id": "1.2.3",
        "view": {**view, "id": "V0CORRECT", "team_id": TEAM, "state": {"values": values}},
    }
    response = app.slack_interaction(payload)
    assert response.status_code == 200, response.text
    return response.json() if response.content else {}


def stored(app: AppProcess, model: type[Any]) -> list[Any]:
    with app.database() as db, db.sessions() as session:
        return list(session.query(model).order_by(model.id))


def test_an_ai_answer_explains_itself_and_a_correction_is_approved_by_a_teammate(
    app: AppProcess, slack: SlackStandIn
):
    slack.add_user(OUTSIDER, "olga", "Olga Outside")
    slack.set_members(CHANNEL, {"U0ANA", "U0BOB"})
    turn, answer = ai_answers(app, slack)
    assert ":robot_face: *AI*" in json.dumps(answer["blocks"]) and "AI agent" in json.dumps(answer["blocks"])

    # Why? — the stored decision, in a modal.
    click_in_thread(app, slack, answer, ids.AI_WHY, user="U0ANA")
    slack.wait_for(lambda: len(slack.opened_views) == 1)
    why = json.dumps(slack.opened_views[0], ensure_ascii=False)
    for said in (
        "pricing_question",
        "82%",
        "Answered from the pricing page.",
        "Pricing (pricing.md)",
        "gpt-test",
        "812 in, 64 out",
    ):
        assert said in why

    # 👎 — recorded at once, and the correction modal opens.
    click_in_thread(app, slack, answer, ids.AI_DOWN, user="U0ANA")
    slack.wait_for(lambda: len(slack.opened_views) == 2)
    [decision] = stored(app, AIDecision)
    assert decision.feedback == "down" and decision.feedback_by_id is not None
    correction_modal = slack.opened_views[1]
    assert correction_modal["callback_id"] == ids.AI_CORRECTION_MODAL
    typed = {
        ids.AI_CORRECTION_BLOCK: {
            ids.AI_CORRECTION_ACTION: {"type": "plain_text_input", "value": "Pro is 59 EUR a month."}
        }
    }
    submit(app, correction_modal, typed, user="U0ANA")
    submit(app, correction_modal, typed, user="U0ANA")  # submitted twice: still one entry

    # Posted in the thread for review, with Approve and Reject.
    slack.wait_for(lambda: any("Correction to review" in m["text"] for m in thread(slack)))
    [entry] = stored(app, KnowledgeEntry)
    assert (entry.status, entry.source, entry.decision_id) == ("pending", "correction", turn.decision_id)
    review = next(m for m in thread(slack) if "Correction to review" in m["text"])
    assert "Pro is 59 EUR a month." in json.dumps(review["blocks"]) and "<@U0ANA>" in json.dumps(
        review["blocks"]
    )

    # Someone outside the channel cannot approve it.
    click_in_thread(app, slack, review, ids.KNOWLEDGE_APPROVE, user=OUTSIDER)
    slack.wait_for(lambda: slack.messages(OUTSIDER) != [])  # told privately (a DM: not in the channel)
    assert "join the channel" in slack.messages(OUTSIDER)[-1]["text"]
    assert stored(app, KnowledgeEntry)[0].status == KnowledgeStatus.PENDING

    # A teammate approves: the post says so, and the agent may use it from now on.
    click_in_thread(app, slack, review, ids.KNOWLEDGE_APPROVE, user="U0BOB")
    slack.wait_for(lambda: "Correction approved" in slack.message(CHANNEL, review["ts"])["text"])
    [entry] = stored(app, KnowledgeEntry)
    assert entry.status == KnowledgeStatus.APPROVED and entry.reviewed_by_id is not None
    assert element_ids(slack.message(CHANNEL, review["ts"])) == set()  # no buttons left

    # A late Reject on the old post changes nothing; the clicker is told.
    click_in_thread(app, slack, review, ids.KNOWLEDGE_REJECT, user="U0ANA")
    slack.wait_for(lambda: any("already approved" in e.get("text", "") for e in slack.ephemerals))
    assert stored(app, KnowledgeEntry)[0].status == KnowledgeStatus.APPROVED


def element_ids(message: dict[str, Any]) -> set[str]:
    return {
        item["action_id"]
        for block in message.get("blocks") or []
        for item in block.get("elements") or []
        if "action_id" in item
    }


def test_thumbs_up_is_recorded_and_an_outsider_changes_nothing(app: AppProcess, slack: SlackStandIn):
    slack.add_user(OUTSIDER, "olga", "Olga Outside")
    slack.set_members(CHANNEL, {"U0ANA", "U0BOB"})
    _, answer = ai_answers(app, slack)
    click_in_thread(app, slack, answer, ids.AI_UP, user=OUTSIDER)
    click_in_thread(app, slack, answer, ids.AI_DOWN, user=OUTSIDER)
    click_in_thread(app, slack, answer, ids.AI_UP, user="U0BOB")
    slack.wait_for(lambda: any("is recorded" in e.get("text", "") for e in slack.ephemerals))
    [decision] = stored(app, AIDecision)
    assert decision.feedback == "up"
    assert slack.opened_views == []  # the outsider's 👎 opened no correction modal


def test_why_on_an_answer_the_running_agent_gave(ai_app: AppProcess, slack: SlackStandIn):
    """The whole path: the lead asks, the agent in the app asks the model (the stand-in), answers in
    the thread; Why? shows what that turn stored."""
    lead_writes(ai_app, "Which plans do you have?", message_id="wamid.ai.why")
    slack.wait_for(lambda: any("Starter and Pro" in entry["text"] for entry in thread(slack)))
    answer = next(entry for entry in thread(slack) if "Starter and Pro" in entry["text"])
    click_in_thread(ai_app, slack, answer, ids.AI_WHY, user="U0ANA")
    slack.wait_for(lambda: len(slack.opened_views) == 1)
    why = json.dumps(slack.opened_views[0], ensure_ascii=False)
    assert "gpt-e2e" in why and "*Intent*\\nquestion" in why and "Plans" in why
    [decision] = stored(ai_app, AIDecision)
    assert f"{decision.prompt_tokens} in, {decision.completion_tokens} out" in why
    click_in_thread(ai_app, slack, answer, ids.AI_UP, user="U0ANA")
    slack.wait_for(lambda: any("is recorded" in e.get("text", "") for e in slack.ephemerals))
    assert stored(ai_app, AIDecision)[0].feedback == "up"

    # The lead asks for a person: the hand-off notice carries Why? too, for the decision that handed off.
    lead_writes(ai_app, "Can I talk to a human please?", message_id="wamid.ai.human")
    slack.wait_for(lambda: any("over to the team" in entry["text"] for entry in thread(slack)))
    notice = next(entry for entry in thread(slack) if "over to the team" in entry["text"])
    click_in_thread(ai_app, slack, notice, ids.AI_WHY_DECISION, user="U0ANA")
    slack.wait_for(lambda: len(slack.opened_views) == 2)
    handed_off = json.dumps(slack.opened_views[1], ensure_ascii=False)
    assert "Handed off to the team" in handed_off and "asked for a person" in handed_off
