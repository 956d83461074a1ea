"""The AI agent in the running app, on both runtimes: OPENAI_BASE_URL points at the OpenAI-compatible
stand-in; a lead's WhatsApp question is answered over WhatsApp and shown in the thread, and asking for
a person hands the conversation to the team (the thread says why, the card says AI: paused)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import running_app
from tests.e2e.harness import AppProcess
from tests.e2e.test_whatsapp_slack import card_text, lead_writes, thread
from tests.standins.graph_api import GraphStandIn
from tests.standins.openai_api import OpenAIStandIn, decision
from tests.standins.slack_api import SlackStandIn

KEY = "sk-e2e-secret-key"


@pytest.fixture
def openai_api() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn(api_key=KEY, model="gpt-e2e") as server:
        server.default = decision("We have two plans, Starter and Pro.", intent="question")
        yield server


@pytest.fixture
def ai_app(app_env: dict[str, str], openai_api: OpenAIStandIn, tmp_path: Path) -> Iterator[AppProcess]:
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "plans.md").write_text("# Plans\nThreadline has two plans, Starter and Pro.\n")
    env = {
        **app_env,
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": openai_api.base_url,
        "THREADLINE_AI_MODEL": "gpt-e2e",
        "THREADLINE_KNOWLEDGE_DIR": str(knowledge),
    }
    with running_app(env, tmp_path / "threadline.log") as process:
        yield process
    assert KEY not in process.logs()


def test_the_ai_answers_over_whatsapp_and_hands_off_when_asked_for_a_person(
    ai_app: AppProcess, openai_api: OpenAIStandIn, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(ai_app, "Which plans do you have?", message_id="wamid.ai.1")
    graph.wait_for(
        lambda: any(
            m.body.get("text", {}).get("body") == "We have two plans, Starter and Pro." for m in graph.sent
        )
    )
    slack.wait_for(lambda: any("Starter and Pro" in entry["text"] for entry in thread(slack)[1:]))
    assert "AI: active" in card_text(slack)
    [asked] = openai_api.chats
    assert "Which plans do you have?" in json.dumps(asked.body)

    lead_writes(ai_app, "Can I talk to a human please?", message_id="wamid.ai.2")
    slack.wait_for(lambda: any("over to the team" in entry["text"] for entry in thread(slack)))
    slack.wait_for(lambda: "AI: paused" in card_text(slack))
    notice = next(entry["text"] for entry in thread(slack) if "over to the team" in entry["text"])
    assert "asked for a person" in notice
    assert len(graph.sent) == 1 and len(openai_api.chats) == 1  # nothing more to the lead, no model call
