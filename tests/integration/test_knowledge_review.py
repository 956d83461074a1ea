"""A correction posted for review (bot/review.py, the `review_knowledge` outbox job), against real
databases and the strict Slack stand-in: posted once in the conversation's thread, never twice when
an attempt's answer was lost, and not at all once someone has reviewed it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bot.mirror import Mirror
from bot.review import KnowledgeReview
from bot.slack_client import SlackGateway
from core.actions.ai_feedback import do_correct_decision
from core.actions.knowledge import do_review_knowledge
from core.coordination import LocalCoordinator
from core.db import Database
from core.models import Conversation
from core.outbox import Job, JobKind, OutboxRunner
from core.routing import Routes
from tests.conftest import SPECS, handlers
from tests.integration.test_ai_feedback_use_cases import ai_answer
from tests.integration.test_notifications import run_pending
from tests.integration.test_use_cases import member
from tests.standins.slack_api import SlackStandIn

TOKEN = "xoxb-review-test"
CHANNEL = "C0LEADS"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(SPECS / "slack" / "methods", bot_token=TOKEN) as standin:
        standin.add_channel(CHANNEL, "leads")
        yield standin
        assert standin.violations == []


@pytest.fixture
def review(db: Database, slack: SlackStandIn) -> KnowledgeReview:
    gateway = SlackGateway(token=TOKEN, base_url=slack.base_url, coordinator=LocalCoordinator(), burst=100)
    return KnowledgeReview(db, gateway)


@pytest.fixture
def runner(db: Database, slack: SlackStandIn, review: KnowledgeReview) -> OutboxRunner:
    gateway = SlackGateway(token=TOKEN, base_url=slack.base_url, coordinator=LocalCoordinator(), burst=100)
    mirror = Mirror(db, gateway, routes=Routes(default=CHANNEL), ai_available=True)
    return OutboxRunner(
        db,
        handlers(
            {JobKind.MIRROR: mirror, JobKind.DELIVER: lambda job: None, JobKind.REVIEW_KNOWLEDGE: review}
        ),
    )


def corrected(db: Database, runner: OutboxRunner) -> tuple[int, int]:
    """An AI answer in a mirrored thread, corrected by a teammate: (conversation id, entry id)."""
    turn = ai_answer(db)
    run_pending(db, runner, JobKind.MIRROR)
    entry_id = db.run(
        lambda s: do_correct_decision(s, turn.decision_id, "Pro is 59 EUR.", actor=member(db))
    ).entry_id
    assert entry_id is not None
    with db.sessions() as session:
        conversation_id = session.query(Conversation).one().id
    return conversation_id, entry_id


def reviews(slack: SlackStandIn) -> list[dict[str, object]]:
    card = slack.messages(CHANNEL)[0]
    return [m for m in slack.replies(CHANNEL, str(card["ts"])) if "Correction to review" in str(m["text"])]


def test_a_correction_is_posted_once_in_its_thread(db: Database, runner: OutboxRunner, slack: SlackStandIn):
    corrected(db, runner)
    assert run_pending(db, runner, JobKind.REVIEW_KNOWLEDGE) == 1
    [posted] = reviews(slack)
    assert "Pro is 59 EUR." in json.dumps(posted["blocks"]) and "<@U1>" in json.dumps(posted["blocks"])


def test_a_retry_after_a_lost_answer_finds_the_first_post(
    db: Database, runner: OutboxRunner, slack: SlackStandIn, review: KnowledgeReview
):
    conversation_id, entry_id = corrected(db, runner)
    job = Job(0, JobKind.REVIEW_KNOWLEDGE, conversation_id, None, {"entry_id": entry_id}, attempts=1)
    review(job)
    review(Job(0, JobKind.REVIEW_KNOWLEDGE, conversation_id, None, {"entry_id": entry_id}, attempts=2))
    assert len(reviews(slack)) == 1


def test_a_correction_reviewed_before_its_post_is_not_posted(
    db: Database, runner: OutboxRunner, slack: SlackStandIn
):
    _, entry_id = corrected(db, runner)
    db.run(lambda s: do_review_knowledge(s, entry_id, approve=True, actor=member(db, "U2", "Bob")))
    assert run_pending(db, runner, JobKind.REVIEW_KNOWLEDGE) == 1
    assert reviews(slack) == []
