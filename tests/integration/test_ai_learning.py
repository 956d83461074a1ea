"""The loop closes: a teammate's correction of an AI answer is not used while pending, and is used for
the next lead's question once a teammate approves it (real databases, the real `openai` client against
the OpenAI-compatible stand-in)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from core.actions.ai_feedback import do_correct_decision
from core.actions.knowledge import do_review_knowledge
from core.db import Database
from core.models import AIDecision
from tests.integration import test_ai_agent
from tests.integration.test_ai_agent import agent, lead_writes
from tests.integration.test_use_cases import member
from tests.standins.openai_api import OpenAIStandIn

# The agent's fixtures: the stand-in model server, the knowledge folder.
model, openai_api, knowledge_dir = test_ai_agent.model, test_ai_agent.openai_api, test_ai_agent.knowledge_dir
CORRECTION = "Yes: the Lisbon office is open for visits by appointment, Monday to Friday."


def decisions(db: Database) -> list[AIDecision]:
    with db.sessions() as session:
        return list(session.scalars(select(AIDecision).order_by(AIDecision.id)))


def test_an_approved_correction_is_what_the_agent_answers_from_next_time(
    db: Database, openai_api: OpenAIStandIn, knowledge_dir: Path
):
    the_agent = agent(db, openai_api, knowledge_dir)
    the_agent(lead_writes(db, "Can I visit the Lisbon office?", wa_id="15551230001"))
    [first] = decisions(db)
    entry_id = db.run(lambda s: do_correct_decision(s, first.id, CORRECTION, actor=member(db))).entry_id
    assert entry_id is not None

    # Pending: another lead asking the same is answered without it.
    the_agent(lead_writes(db, "Is the Lisbon office open for visits?", wa_id="15551230002"))
    assert CORRECTION not in json.dumps(openai_api.chats[-1].body)
    assert all(item.get("id") != entry_id for item in decisions(db)[-1].knowledge)

    # Approved by a teammate: the next lead's turn retrieves it, the model reads it, the decision says so.
    db.run(lambda s: do_review_knowledge(s, entry_id, approve=True, actor=member(db, "U2", "Bob")))
    the_agent(lead_writes(db, "Could I visit your Lisbon office on Monday?", wa_id="15551230003"))
    assert CORRECTION in json.dumps(openai_api.chats[-1].body)
    used = decisions(db)[-1].knowledge
    assert any(item.get("id") == entry_id for item in used), used
