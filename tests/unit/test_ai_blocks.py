"""The AI's Block Kit: buttons on each AI message, the Why? modal, the correction modal and the review
post — valid for Slack whatever the model, the lead or a teammate wrote, and never pinging anyone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.blocks import ids
from bot.blocks.ai import (
    build_correction_modal,
    build_knowledge_review,
    build_knowledge_reviewed,
    build_why_modal,
    parse_correction,
)
from bot.blocks.thread import build_thread_entry
from core.models import AIDecision, Author, KnowledgeEntry, KnowledgeStatus
from tests.unit.test_blocks import HOSTILE, HOSTILE_ESCAPED, make_message, valid_blocks, valid_view

HUGE = (HOSTILE + "\n") * 3000  # 63,000 characters, every one of them markup to escape


def decision(**overrides: Any) -> AIDecision:
    values: dict[str, Any] = {
        "id": 5,
        "conversation_id": 7,
        "answered_message_id": 1,
        "reply_message_id": 2,
        "outcome": "replied",
        "intent": "pricing_question",
        "confidence": 0.82,
        "reasoning": "The lead asked for the price of the Pro plan; the pricing page says 49 EUR.",
        "escalate": False,
        "reasons": [],
        "knowledge": [{"id": 3, "source": "database", "title": "Pro plan pricing"}],
        "model": "gpt-4o-mini",
        "latency_ms": 1234,
        "prompt_tokens": 812,
        "completion_tokens": 64,
    }
    return AIDecision(**{**values, **overrides})


def entry(**overrides: Any) -> KnowledgeEntry:
    values: dict[str, Any] = {
        "id": 9,
        "title": "Lead asked: how much is Pro?",
        "body": "Pro is 59 EUR a month since November.",
        "status": KnowledgeStatus.PENDING,
        "source": "correction",
        "decision_id": 5,
    }
    return KnowledgeEntry(**{**values, **overrides})


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    return {
        element["action_id"]: element["value"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    }


def test_an_ai_answer_is_marked_as_the_ais_and_carries_why_and_feedback():
    text, blocks = build_thread_entry(make_message(id=2, author=Author.AI, text="Pro is 49 EUR."), "Jane")
    valid_blocks(blocks)
    assert text == "AI: Pro is 49 EUR."
    about = blocks[0]["elements"][0]["text"]
    assert ":robot_face: *AI*" in about and "AI agent" in about
    assert buttons(blocks) == {ids.AI_WHY: "2", ids.AI_UP: "2", ids.AI_DOWN: "2"}


@pytest.mark.parametrize("author", [Author.LEAD, Author.MEMBER, Author.SYSTEM])
def test_nobody_elses_message_gets_the_ai_buttons(author: Author):
    _, blocks = build_thread_entry(make_message(author=author, text="hello"), "Jane")
    assert not set(buttons(blocks)) & {ids.AI_WHY, ids.AI_UP, ids.AI_DOWN}
    assert ":robot_face:" not in texts(blocks)


def test_a_huge_ai_answer_keeps_its_buttons_within_slacks_50_blocks():
    _, blocks = build_thread_entry(make_message(author=Author.AI, text="x " * 200_000), "Jane")
    valid_blocks(blocks)
    assert blocks[-1]["block_id"] == ids.AI_FEEDBACK_BLOCK
    assert "truncated" in texts(blocks)


def test_why_shows_the_stored_decision():
    view = valid_view(build_why_modal(decision(), feedback_by=None))
    shown = texts(view["blocks"])
    for said in ("pricing_question", "82%", "Pro plan pricing", "gpt-4o-mini", "1.2 s", "812 in, 64 out"):
        assert said in shown
    assert "the pricing page says 49 EUR" in shown
    assert "_none_" in shown  # no escalation reasons


def test_why_of_a_handoff_lists_its_reasons_and_the_feedback_given():
    handed_off = decision(
        outcome="handed_off",
        confidence=None,
        reasons=["the lead asked for a human", "pricing topic"],
        knowledge=[],
        feedback="down",
        correction="Say 59 EUR.",
        latency_ms=80,
    )
    shown = texts(valid_view(build_why_modal(handed_off, feedback_by="Ana"))["blocks"])
    assert "Handed off to the team" in shown and "the lead asked for a human" in shown
    assert "pricing topic" in shown and "_none matched_" in shown and "80 ms" in shown
    assert "wrong answer by Ana" in shown and "Say 59 EUR." in shown


def test_why_stays_valid_and_inert_whatever_the_model_wrote():
    hostile = decision(
        intent=HUGE,
        reasoning=HUGE,
        reasons=[HUGE] * 500,
        knowledge=[{"id": None, "source": HUGE, "title": HUGE}] * 500 + ["not a dict", None],
        model=HUGE,
        feedback="up",
        correction=HUGE,
    )
    view = valid_view(build_why_modal(hostile, feedback_by=HUGE))
    shown = texts(view["blocks"])
    assert "<!channel>" not in shown and "<@U999>" not in shown
    assert HOSTILE_ESCAPED in shown
    assert "… and 480 more" in shown


def test_the_correction_modal_quotes_both_sides_and_asks_for_the_answer():
    view = valid_view(build_correction_modal(5, asked=HUGE, answered=HUGE))
    assert view["private_metadata"] == "5"
    assert "<!channel>" not in texts(view["blocks"])
    typed = {ids.AI_CORRECTION_BLOCK: {ids.AI_CORRECTION_ACTION: {"type": "plain_text_input", "value": "59"}}}
    assert parse_correction(typed) == "59"
    assert parse_correction({ids.AI_CORRECTION_BLOCK: {ids.AI_CORRECTION_ACTION: {"value": None}}}) == ""
    with pytest.raises(ValueError):
        parse_correction({})


def test_the_review_post_offers_approve_and_reject_and_names_the_author():
    text, blocks = build_knowledge_review(entry(), author="U0ANA")
    valid_blocks(blocks)
    assert "how much is Pro?" in text
    assert "<@U0ANA>" in texts(blocks) and "59 EUR a month" in texts(blocks)
    assert buttons(blocks) == {ids.KNOWLEDGE_APPROVE: "9", ids.KNOWLEDGE_REJECT: "9"}


def test_the_review_post_survives_huge_hostile_corrections():
    text, blocks = build_knowledge_review(entry(title=HUGE[:300], body=HUGE[:3000]), author=None)
    valid_blocks(blocks)
    assert "<!channel>" not in text + texts(blocks)
    text, blocks = build_knowledge_review(entry(body="\n" * 2999 + "x"), author=None)
    valid_blocks(blocks)


@pytest.mark.parametrize(
    ("status", "said"), [(KnowledgeStatus.APPROVED, "approved"), (KnowledgeStatus.REJECTED, "rejected")]
)
def test_a_reviewed_correction_says_how_and_by_whom_without_buttons(status: KnowledgeStatus, said: str):
    text, blocks = build_knowledge_reviewed(entry(status=status, body=HUGE[:3000]), reviewer="U0BOB")
    valid_blocks(blocks)
    assert said in text and "<@U0BOB>" in texts(blocks)
    assert buttons(blocks) == {}


def test_stats_show_ai_turns_handoffs_speed_and_tokens():
    from bot.blocks.leads import build_stats
    from core.queries.ai_stats import AIStats
    from core.queries.stats import Stats

    team = Stats(
        conversations=4,
        first_response_median_seconds=None,
        first_response_mean_seconds=None,
        resolved=0,
        resolution_rate=None,
        ai_messages=3,
        member_messages=1,
        ai_share=0.75,
        csat_count=0,
        csat_average=None,
    )
    ai = AIStats(
        turns=4,
        outcomes={"replied": 3, "handed_off": 1},
        latency_p50_ms=1500,
        latency_p95_ms=4000,
        prompt_tokens=12000,
        completion_tokens=800,
    )
    _, blocks = build_stats(team, period="week", mine=False, ai=ai)
    valid_blocks(blocks)
    shown = texts(blocks)
    assert "*AI turns*\\n4, 1 handed off (25%)" in shown
    assert "median 1.5 s, 12,800 tokens (12,000 in, 800 out)" in shown
    _, none_yet = build_stats(team, period="today", mine=False, ai=AIStats(turns=0))
    assert "no AI turns yet" in texts(none_yet)
    _, without = build_stats(team, period="week", mine=False)
    assert "AI turns" not in texts(without)  # AI off and never on: the numbers as before


# --- App Home: knowledge to review ------------------------------------------------------------------------


def test_app_home_lists_corrections_to_review_with_links_to_their_threads():
    from bot.blocks.home import build_home
    from core.queries.ai_stats import ToReview
    from tests.unit.test_home_blocks import WORKSPACE, row, summary
    from tests.unit.test_home_blocks import valid_view as valid_home

    pending = [ToReview(9, "Lead asked: how much is Pro?", "C0LEADS", "1700000000.000001")]
    view = build_home(summary(unassigned=[row()]), workspace_url=WORKSPACE, to_review=(pending, 1))
    shown = texts(valid_home(view))
    assert "Knowledge to review (1)" in shown
    assert "<https://acme.slack.com/archives/C0LEADS/p1700000000000001|Lead asked: how much is Pro?>" in shown
    without = build_home(summary(unassigned=[row()]), workspace_url=WORKSPACE)
    assert "Knowledge to review" not in texts(without["blocks"])  # nothing pending: Home as before


def test_app_home_review_list_stays_valid_and_inert_for_many_hostile_titles():
    from bot.blocks.home import build_home
    from core.queries.ai_stats import ToReview
    from tests.unit.test_home_blocks import row, summary
    from tests.unit.test_home_blocks import valid_view as valid_home

    many = [ToReview(n, HUGE[:300], "C0LEADS", f"1700000000.{n:06d}") for n in range(50)]
    home = summary(mine=[row(n) for n in range(20)], unassigned=[row(n) for n in range(20)], mine_open=20)
    shown = texts(valid_home(build_home(home, workspace_url=None, to_review=(many, 75))))
    assert "<!channel>" not in shown and "Knowledge to review (75)" in shown
    assert "and 65 more" in shown and "(in <#C0LEADS>)" in shown


def test_the_handoff_notice_carries_why_for_its_decision():
    from bot.blocks.ai import build_handoff_blocks

    blocks = build_handoff_blocks(
        ":raising_hand: <!here> The AI handed Jane over: " + HOSTILE_ESCAPED * 200, 5
    )
    valid_blocks(blocks)
    assert buttons(blocks) == {ids.AI_WHY_DECISION: "5"}
