"""The team's numbers (`/leads stats`, App Home's "my numbers"): how fast we answer, how much we close,
how much the AI carries, how satisfied leads are.

Each figure counts what happened in the period: conversations active in it, first responses given in
it, conversations closed in it, messages sent in it, ratings received in it. Only conversations living in
`channels` count (the Slack channels the reader is in); with `member_id`, only those assigned to them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, cast, func, select
from sqlalchemy.orm import Session

from core.models import Author, Conversation, Direction, Message, Status


@dataclass(frozen=True)
class Stats:
    conversations: int  # active in the period (last activity in it)
    first_response_median_seconds: float | None  # None: no first response in the period
    first_response_mean_seconds: float | None
    resolved: int  # closed in the period and still closed
    resolution_rate: float | None  # resolved / conversations; None without conversations
    ai_messages: int  # sent to leads in the period
    member_messages: int
    ai_share: float | None  # ai / (ai + member); None when nothing was sent
    csat_count: int
    csat_average: float | None


def conversation_stats(
    session: Session, *, since: datetime | None, channels: Collection[str], member_id: int | None = None
) -> Stats:
    scope: list[ColumnElement[bool]] = [Conversation.slack_channel.in_(list(channels))]
    if member_id is not None:
        scope.append(Conversation.assignee_id == member_id)

    def in_period(column: Any) -> list[ColumnElement[bool]]:
        return [] if since is None else [column >= since]

    conversations = _count(session, *scope, *in_period(Conversation.last_activity_at))
    resolved = _count(
        session,
        *scope,
        Conversation.status == Status.CLOSED,
        Conversation.closed_at.is_not(None),
        *in_period(Conversation.closed_at),
    )
    median, mean = _first_response(
        session,
        [*scope, Conversation.first_response_at.is_not(None), *in_period(Conversation.first_response_at)],
    )
    sent = dict(
        session.execute(
            select(Message.author, func.count())
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                *scope,
                Message.direction == Direction.OUTBOUND,
                Message.author.in_((Author.AI, Author.MEMBER)),
                *in_period(Message.created_at),
            )
            .group_by(Message.author)
        ).all()
    )
    ai, by_members = int(sent.get(Author.AI, 0)), int(sent.get(Author.MEMBER, 0))
    csat_count, csat_average = session.execute(
        select(func.count(), func.avg(cast(Conversation.csat_score, Float))).where(
            *scope, Conversation.csat_score.is_not(None), *in_period(Conversation.csat_at)
        )
    ).one()
    return Stats(
        conversations=conversations,
        first_response_median_seconds=median,
        first_response_mean_seconds=mean,
        resolved=resolved,
        resolution_rate=resolved / conversations if conversations else None,
        ai_messages=ai,
        member_messages=by_members,
        ai_share=ai / (ai + by_members) if ai + by_members else None,
        csat_count=int(csat_count),
        csat_average=float(csat_average) if csat_average is not None else None,
    )


def _seconds_to_first_response(session: Session) -> ColumnElement[float]:
    """From the conversation's start (the lead's first message) to our first answer."""
    if session.get_bind().dialect.name == "sqlite":
        # julianday is a day fraction in a double: round back to milliseconds.
        days = func.julianday(Conversation.first_response_at) - func.julianday(Conversation.created_at)
        return func.round(days * 86400.0, 3)
    return cast(func.extract("epoch", Conversation.first_response_at - Conversation.created_at), Float)


def _first_response(session: Session, where: list[ColumnElement[bool]]) -> tuple[float | None, float | None]:
    seconds = _seconds_to_first_response(session)
    count, mean = session.execute(select(func.count(), func.avg(seconds)).where(*where)).one()
    if not count:
        return None, None
    # The median without a percentile function (SQLite has none): the middle one or two by order.
    middle = list(
        session.scalars(
            select(seconds).where(*where).order_by(seconds).offset((count - 1) // 2).limit(2 - count % 2)
        )
    )
    return float(sum(middle) / len(middle)), float(mean)


def _count(session: Session, *conditions: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(Conversation).where(*conditions)) or 0
