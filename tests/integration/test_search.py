"""`/leads` against real databases (SQLite and PostgreSQL): every filter, search and the stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from core.db import Database
from core.models import AIMode, Author, Conversation, Direction, Lead, Member, Message, Status
from core.queries.stats import conversation_stats

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _conversation(
    session: Session,
    name: str,
    *,
    slack_channel: str = "C_SALES",
    status: Status = Status.OPEN,
    created: datetime = NOW - timedelta(days=1),
    **fields: object,
) -> Conversation:
    lead = Lead(name=name, created_at=created)
    conversation = Conversation(
        lead=lead,
        channel="whatsapp",
        channel_account="PHONE1",
        provider_thread_id=name,
        status=status,
        slack_channel=slack_channel,
        slack_thread_ts=f"{len(name)}.{abs(hash(name)) % 10**6:06d}",
        created_at=created,
        last_activity_at=created,
        **fields,
    )
    session.add(conversation)
    session.flush()
    return conversation


def _sent(session: Session, conversation: Conversation, author: Author, at: datetime) -> None:
    session.add(
        Message(
            conversation_id=conversation.id,
            channel="whatsapp",
            direction=Direction.OUTBOUND,
            author=author,
            text="hello",
            created_at=at,
        )
    )


def test_stats_count_what_happened_in_the_period_in_the_readers_channels(db: Database) -> None:
    week_ago = NOW - timedelta(days=7)
    with db.transaction() as session:
        rep = Member(slack_user_id="U_REP", name="Rep")
        session.add(rep)
        session.flush()
        fast = _conversation(
            session,
            "Fast",
            first_response_at=NOW - timedelta(days=1) + timedelta(seconds=60),
            assignee_id=rep.id,
        )
        fast.last_activity_at = NOW
        slow = _conversation(
            session,
            "Slow",
            status=Status.CLOSED,
            first_response_at=NOW - timedelta(days=1) + timedelta(seconds=300),
            closed_at=NOW - timedelta(hours=1),
            csat_score=4,
            csat_at=NOW - timedelta(minutes=30),
            ai_mode=AIMode.ACTIVE,
        )
        _conversation(session, "Medium", first_response_at=NOW - timedelta(days=1) + timedelta(seconds=120))
        old = _conversation(
            session,
            "Old",
            created=NOW - timedelta(days=30),
            status=Status.CLOSED,
            first_response_at=NOW - timedelta(days=30),
            closed_at=NOW - timedelta(days=29),
            csat_score=1,
            csat_at=NOW - timedelta(days=29),
        )
        hidden = _conversation(
            session, "Elsewhere", slack_channel="C_PRIVATE", first_response_at=NOW, csat_score=5, csat_at=NOW
        )
        for conversation, author in [(fast, Author.MEMBER), (slow, Author.AI), (slow, Author.AI)]:
            _sent(session, conversation, author, NOW - timedelta(hours=2))
        _sent(session, old, Author.MEMBER, NOW - timedelta(days=29))
        _sent(session, hidden, Author.MEMBER, NOW)
        rep_id = rep.id

    with db.transaction() as session:
        week = conversation_stats(session, since=week_ago, channels=["C_SALES"])
        everything = conversation_stats(session, since=None, channels=["C_SALES"])
        mine = conversation_stats(session, since=week_ago, channels=["C_SALES"], member_id=rep_id)
        nothing = conversation_stats(session, since=week_ago, channels=[])

    assert week.conversations == 3
    assert week.first_response_median_seconds == 120
    assert week.first_response_mean_seconds == 160
    assert (week.resolved, week.resolution_rate) == (1, 1 / 3)
    assert (week.ai_messages, week.member_messages, week.ai_share) == (2, 1, 2 / 3)
    assert (week.csat_count, week.csat_average) == (1, 4.0)

    assert everything.conversations == 4
    assert everything.first_response_median_seconds == 90  # 0, 60, 120, 300: the middle two
    assert (everything.csat_count, everything.csat_average) == (2, 2.5)
    assert everything.member_messages == 2

    assert (mine.conversations, mine.first_response_median_seconds, mine.member_messages) == (1, 60, 1)
    assert mine.ai_share == 0 and mine.csat_count == 0 and mine.csat_average is None

    assert nothing.conversations == 0
    assert nothing.first_response_median_seconds is None and nothing.resolution_rate is None
    assert nothing.ai_share is None and nothing.csat_average is None
