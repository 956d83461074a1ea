"""The team's feedback on the AI, against real databases (SQLite and PostgreSQL): 👍/👎 recorded on the
decision, a correction becomes a pending knowledge entry posted for review, a teammate approves it;
every click idempotent; and the AI's numbers for `/leads stats`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.actions.ai import AITurn, do_ai_turn
from core.actions.ai_feedback import Rating, do_correct_decision, do_rate_decision
from core.actions.common import SYSTEM, Actor
from core.actions.conversation import do_resume_ai
from core.actions.knowledge import do_review_knowledge
from core.db import Database
from core.errors import InvalidAction, NotAllowed, NotFound
from core.models import AIDecision, Event, KnowledgeEntry, KnowledgeStatus, Outbox, utcnow
from core.outbox import JobKind
from core.queries.ai_stats import ai_stats, pending_knowledge, why
from tests.integration.test_use_cases import member, receive, whatsapp_text

PRICE_TURN = AITurn(
    model="gpt-test",
    reply="Pro is 49 EUR a month.",
    intent="pricing_question",
    confidence=0.8,
    reasoning="Answered from the pricing page.",
    knowledge=[{"id": None, "source": "pricing.md", "title": "Pricing"}],
    latency_ms=1200,
    prompt_tokens=800,
    completion_tokens=40,
)


def ai_answer(
    db: Database, text: str = "How much is Pro?", *, wa_id: str = "15551230001", turn: AITurn = PRICE_TURN
):
    """A lead's question and the AI's answer to it, through the engine's own commit (core.actions.ai)."""
    received = receive(db, whatsapp_text(text, message_id=f"wamid.{wa_id}.{text}", wa_id=wa_id))
    db.run(lambda s: do_resume_ai(s, received.conversation_id, actor=SYSTEM, ai_available=True))
    return db.run(lambda s: do_ai_turn(s, received.conversation_id, received.message_id, turn))


def decision(db: Database, decision_id: int) -> AIDecision:
    with db.sessions() as session:
        return session.get_one(AIDecision, decision_id)


def entries(db: Database) -> list[KnowledgeEntry]:
    with db.sessions() as session:
        return list(session.scalars(select(KnowledgeEntry).order_by(KnowledgeEntry.id)))


def review_jobs(db: Database) -> list[dict[str, object]]:
    with db.sessions() as session:
        return [
            job.payload
            for job in session.scalars(select(Outbox).where(Outbox.kind == JobKind.REVIEW_KNOWLEDGE))
        ]


def test_thumbs_up_is_recorded_once_with_who_and_when(db: Database):
    turn = ai_answer(db)
    ana = member(db)
    first = db.run(lambda s: do_rate_decision(s, turn.decision_id, Rating.UP, actor=ana))
    again = db.run(lambda s: do_rate_decision(s, turn.decision_id, Rating.UP, actor=ana))
    assert first.changed and not again.changed
    stored = decision(db, turn.decision_id)
    assert (
        stored.feedback == "up" and stored.feedback_by_id == ana.member_id and stored.feedback_at is not None
    )
    with db.sessions() as session:
        kinds = list(session.scalars(select(Event.kind).where(Event.kind == "ai_feedback")))
    assert kinds == ["ai_feedback"]  # the second click wrote nothing


def test_only_a_teammate_can_rate_and_only_a_stored_decision(db: Database):
    turn = ai_answer(db)
    with pytest.raises(NotAllowed):
        db.run(lambda s: do_rate_decision(s, turn.decision_id, Rating.DOWN, actor=SYSTEM))
    with pytest.raises(NotFound):
        db.run(lambda s: do_rate_decision(s, 999_999, Rating.DOWN, actor=member(db)))


def test_a_correction_becomes_one_pending_entry_posted_for_review(db: Database):
    turn = ai_answer(db)
    ana = member(db)
    said = "Pro is 59 EUR a month since November."
    corrected = db.run(lambda s: do_correct_decision(s, turn.decision_id, f"  {said}\n", actor=ana))
    again = db.run(lambda s: do_correct_decision(s, turn.decision_id, said, actor=ana))

    assert corrected.changed and not again.changed and again.entry_id == corrected.entry_id
    [entry] = entries(db)
    assert (entry.status, entry.source, entry.body) == (KnowledgeStatus.PENDING, "correction", said)
    assert entry.decision_id == turn.decision_id and entry.created_by_id == ana.member_id
    assert entry.title == "Lead asked: How much is Pro?"
    stored = decision(db, turn.decision_id)
    assert (stored.feedback, stored.correction, stored.feedback_by_id) == ("down", said, ana.member_id)
    assert review_jobs(db) == [{"entry_id": entry.id}]
    with db.sessions() as session:
        assert [e.id for e in pending_knowledge(session)] == [entry.id]


def test_a_new_correction_replaces_the_pending_one(db: Database):
    turn = ai_answer(db)
    ana = member(db)
    first = db.run(lambda s: do_correct_decision(s, turn.decision_id, "59 EUR", actor=ana))
    second = db.run(
        lambda s: do_correct_decision(s, turn.decision_id, "59 EUR a month, 590 a year", actor=ana)
    )
    old, new = entries(db)
    assert (old.id, new.id) == (first.entry_id, second.entry_id)
    assert old.status == KnowledgeStatus.REJECTED and new.status == KnowledgeStatus.PENDING
    assert decision(db, turn.decision_id).correction == "59 EUR a month, 590 a year"


@pytest.mark.parametrize("text", ["", "   \n ", "x" * 3001])
def test_an_empty_or_huge_correction_is_refused_and_changes_nothing(db: Database, text: str):
    turn = ai_answer(db)
    with pytest.raises(InvalidAction):
        db.run(lambda s: do_correct_decision(s, turn.decision_id, text, actor=member(db)))
    assert entries(db) == [] and decision(db, turn.decision_id).feedback is None


def test_a_teammate_approves_once_and_the_second_click_changes_nothing(db: Database):
    turn = ai_answer(db)
    ana, bob = member(db), member(db, "U2", "Bob")
    entry_id = db.run(lambda s: do_correct_decision(s, turn.decision_id, "59 EUR", actor=ana)).entry_id
    assert entry_id is not None
    approved = db.run(lambda s: do_review_knowledge(s, entry_id, approve=True, actor=bob))
    late = db.run(lambda s: do_review_knowledge(s, entry_id, approve=False, actor=ana))

    assert approved.changed and approved.status == KnowledgeStatus.APPROVED
    assert (
        not late.changed and late.status == KnowledgeStatus.APPROVED and late.reviewed_by_id == bob.member_id
    )
    [entry] = entries(db)
    assert entry.status == KnowledgeStatus.APPROVED and entry.reviewed_by_id == bob.member_id
    with db.sessions() as session:
        assert pending_knowledge(session) == []
        audit = session.scalars(select(Event).where(Event.kind == "knowledge_review")).one()
    assert audit.new == {"entry_id": entry_id, "status": "approved"} and audit.member_id == bob.member_id
    with pytest.raises(NotAllowed):
        db.run(lambda s: do_review_knowledge(s, entry_id, approve=True, actor=SYSTEM))


def test_rejected_corrections_stay_out_of_what_the_agent_may_use(db: Database):
    turn = ai_answer(db)
    entry_id = db.run(
        lambda s: do_correct_decision(s, turn.decision_id, "wrong idea", actor=member(db))
    ).entry_id
    assert entry_id is not None
    db.run(lambda s: do_review_knowledge(s, entry_id, approve=False, actor=member(db, "U2", "Bob")))
    assert [e.status for e in entries(db)] == [KnowledgeStatus.REJECTED]


def test_why_reads_the_decision_behind_an_ai_message_of_that_conversation_only(db: Database):
    turn = ai_answer(db)
    other = ai_answer(db, "Do you ship to Spain?", wa_id="15551230002")
    assert turn.reply_message_id is not None
    mine, theirs = turn_conversation(db, turn.decision_id), turn_conversation(db, other.decision_id)
    with db.sessions() as session:
        shown = why(session, mine, turn.reply_message_id)
        assert shown.decision.id == turn.decision_id
        assert (shown.asked, shown.answered) == ("How much is Pro?", "Pro is 49 EUR a month.")
        with pytest.raises(NotFound):
            why(session, theirs, turn.reply_message_id)


def turn_conversation(db: Database, decision_id: int) -> int:
    return decision(db, decision_id).conversation_id


def test_ai_stats_count_turns_handoffs_latency_and_tokens_in_the_period(db: Database):
    ai_answer(db)
    ai_answer(
        db,
        "hi",
        wa_id="15551230002",
        turn=AITurn(model="m", reply="Hello!", latency_ms=400, prompt_tokens=100, completion_tokens=10),
    )
    ai_answer(
        db,
        "I want a human",
        wa_id="15551230003",
        turn=AITurn(
            model="m", reasons=["asked for a human"], latency_ms=3000, prompt_tokens=50, completion_tokens=5
        ),
    )
    with db.sessions() as session:
        stats = ai_stats(session, since=None)
        later = ai_stats(session, since=utcnow() + timedelta(minutes=1))
        elsewhere = ai_stats(session, since=None, channels=["C0OTHER"])
    assert stats.turns == 3 and stats.outcomes == {"replied": 2, "handed_off": 1}
    assert stats.handoff_rate == pytest.approx(1 / 3)
    assert (stats.latency_p50_ms, stats.latency_p95_ms) == (1200, 3000)
    assert (stats.prompt_tokens, stats.completion_tokens) == (950, 55)
    assert later.turns == 0 and later.handoff_rate is None and later.latency_p50_ms is None
    assert elsewhere.turns == 0


def test_feedback_by_an_actor_without_member_is_refused(db: Database):
    turn = ai_answer(db)
    with pytest.raises(NotAllowed):
        db.run(lambda s: do_correct_decision(s, turn.decision_id, "59", actor=Actor(SYSTEM.kind)))


def test_metrics_show_ai_decisions_by_outcome_tokens_and_latency(db: Database):
    from app.web import _work_metrics

    ai_answer(db)
    ai_answer(
        db, "a human please", wa_id="15551230002", turn=AITurn(model="m", reasons=["asked"], latency_ms=500)
    )
    scraped = _work_metrics(db).decode()
    assert 'threadline_ai_decisions{outcome="replied"} 1.0' in scraped
    assert 'threadline_ai_decisions{outcome="handed_off"} 1.0' in scraped
    assert 'threadline_ai_decisions{outcome="skipped"} 0.0' in scraped
    assert 'threadline_ai_tokens{kind="prompt"} 800.0' in scraped
    assert 'threadline_ai_tokens{kind="completion"} 40.0' in scraped
    assert 'threadline_ai_decision_latency_seconds{quantile="0.5"} 0.5' in scraped
    assert 'threadline_ai_decision_latency_seconds{quantile="0.95"} 1.2' in scraped


def test_knowledge_to_review_lists_pending_corrections_of_the_readers_channels_only(db: Database):
    from core.queries.ai_stats import knowledge_to_review

    ana = member(db)
    first, second = ai_answer(db), ai_answer(db, "Do you ship to Spain?", wa_id="15551230002")
    db.run(lambda s: _put_in_channel(s, first.decision_id, "C0LEADS"))
    db.run(lambda s: _put_in_channel(s, second.decision_id, "C0OTHER"))
    one = db.run(lambda s: do_correct_decision(s, first.decision_id, "59 EUR", actor=ana)).entry_id
    db.run(lambda s: do_correct_decision(s, second.decision_id, "Yes, we do.", actor=ana))
    with db.sessions() as session:
        rows, total = knowledge_to_review(session, channels=["C0LEADS"])
    assert total == 1 and [(r.entry_id, r.title, r.slack_channel) for r in rows] == [
        (one, "Lead asked: How much is Pro?", "C0LEADS")
    ]
    assert one is not None
    db.run(lambda s: do_review_knowledge(s, one, approve=True, actor=ana))
    with db.sessions() as session:
        assert knowledge_to_review(session, channels=["C0LEADS"]) == ([], 0)


def _put_in_channel(session, decision_id: int, channel: str) -> None:  # type: ignore[no-untyped-def]
    from core.models import Conversation

    decision = session.get_one(AIDecision, decision_id)
    conversation = session.get_one(Conversation, decision.conversation_id)
    conversation.slack_channel, conversation.slack_thread_ts = channel, f"1700000000.00000{decision_id}"
