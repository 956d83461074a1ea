"""Satisfaction (THREADLINE_CSAT): on close the lead is asked for a 1-5 rating over their channel; the
answer is recorded, counted in stats, and does not reopen the conversation."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from core.actions.common import Actor, queue, record
from core.models import Author, Conversation, DeliveryStatus, Direction, Message, Status, utcnow
from core.outbox import JobKind

RATING_QUESTION = (
    "Thanks for talking with us! How would you rate this conversation, from 1 (poor) to 5 (great)? "
    "Just reply with a number."
)
# "4", "4/5", "5 stars", "5!", or the stars themselves; anything longer is a message, not a rating.
_NUMBER = re.compile(r"^\s*([1-5])\s*(?:/\s*5|stars?|⭐+)?\s*[.!]*\s*$", re.IGNORECASE)
_STARS = re.compile(r"^\s*(⭐{1,5})\s*$")


def ask_for_rating(session: Session, conversation: Conversation, actor: Actor) -> None:
    """Queue the question to the lead; called in the closing transaction."""
    now = utcnow()
    message = Message(
        conversation=conversation,
        channel=conversation.channel,
        direction=Direction.OUTBOUND,
        author=Author.SYSTEM,
        kind="rating_request",
        text=RATING_QUESTION,
        delivery_status=DeliveryStatus.QUEUED,
        created_at=now,
    )
    session.add(message)
    conversation.csat_asked_at = now
    session.flush()
    record(session, conversation, "csat_asked", actor, new={"message_id": message.id})
    queue(session, JobKind.DELIVER, conversation, message)


def awaiting_rating(conversation: Conversation) -> bool:
    asked, answered = conversation.csat_asked_at, conversation.csat_at
    return (
        conversation.status == Status.CLOSED and asked is not None and (answered is None or answered < asked)
    )


def read_rating(text: str) -> int | None:
    """The 1-5 rating a lead's answer gives, or None when it is not a rating."""
    number = _NUMBER.match(text)
    if number:
        return int(number.group(1))
    stars = _STARS.match(text)
    return len(stars.group(1)) if stars else None


def record_rating(session: Session, conversation: Conversation, score: int, actor: Actor) -> None:
    conversation.csat_score = score
    conversation.csat_at = utcnow()
    record(session, conversation, "csat", actor, new={"score": score})
