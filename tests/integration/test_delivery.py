"""Delivering a rep's reply: once, or failed with a reason the rep can act on — never twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.actions.common import Actor
from core.actions.inbound import do_receive
from core.actions.members import do_register_member
from core.actions.replies import do_reply, do_retry_delivery
from core.db import Database
from core.delivery import UNKNOWN_OUTCOME, Deliverer
from core.errors import NotFound, PermanentDelivery, RetryableDelivery
from core.models import DeliveryStatus, Message, Outbox, OutboxStatus, utcnow
from core.outbox import JobKind, OutboxRunner
from core.ports import Outbound, PartSent, SendReceipt, ignore_part
from tests.conftest import handlers
from tests.integration.test_use_cases import whatsapp_text


class ScriptedSender:
    """Answers each send with the next scripted outcome: an exception to raise, or a receipt."""

    channel = "whatsapp"

    def __init__(self, *outcomes: Exception | str) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[Outbound] = []

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        self.sent.append(message)
        return SendReceipt(outcome)


def reply(db: Database, text: str = "Hello Jane") -> int:
    conversation_id = db.run(
        lambda s: do_receive(s, whatsapp_text("hi", message_id="w1"), ai_available=False)
    ).conversation_id
    ana = Actor.member(db.run(lambda s: do_register_member(s, "U1", name="Ana", email=None)))
    return db.run(
        lambda s: do_reply(s, conversation_id, text, actor=ana, slack_channel="C1", slack_ts="1.1")
    ).message_id


def deliver_job(db: Database) -> int:
    with db.sessions() as session:
        return session.scalars(
            select(Outbox.id).where(Outbox.kind == JobKind.DELIVER).order_by(Outbox.id.desc())
        ).first()  # type: ignore[return-value]


def message(db: Database, message_id: int) -> Message:
    with db.sessions() as session:
        return session.get_one(Message, message_id)


def make_due(db: Database) -> None:
    with db.transaction() as session:
        session.execute(update(Outbox).values(next_attempt_at=utcnow() - timedelta(seconds=1)))


def test_a_refused_send_fails_with_the_reason_and_can_be_retried(db: Database):
    message_id = reply(db)
    sender = ScriptedSender(PermanentDelivery("More than 24 hours since the lead last wrote"), "wamid.2")
    runner = OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"whatsapp": sender})}))

    runner.run(deliver_job(db))
    failed = message(db, message_id)
    assert failed.delivery_status == DeliveryStatus.FAILED and "24 hours" in (failed.delivery_error or "")

    ana = Actor.member(db.run(lambda s: do_register_member(s, "U1", name="Ana", email=None)))
    conversation_id = failed.conversation_id
    with pytest.raises(NotFound):  # a Retry button only retries a message of its own conversation
        db.run(lambda s: do_retry_delivery(s, conversation_id + 1, message_id, actor=ana))
    assert db.run(lambda s: do_retry_delivery(s, conversation_id, message_id, actor=ana)).changed
    runner.run(deliver_job(db))
    assert message(db, message_id).delivery_status == DeliveryStatus.SENT and len(sender.sent) == 1


def test_a_passing_outage_is_retried_until_it_is_sent_once(db: Database):
    message_id = reply(db)
    sender = ScriptedSender(RetryableDelivery("WhatsApp could not be reached"), "wamid.ok")
    runner = OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"whatsapp": sender})}))
    job = deliver_job(db)

    runner.run(job)
    assert message(db, message_id).delivery_status == DeliveryStatus.QUEUED
    make_due(db)
    runner.run(job)
    assert message(db, message_id).provider_message_id == "wamid.ok" and len(sender.sent) == 1
    with db.sessions() as session:
        assert session.get_one(Outbox, job).status == OutboxStatus.DONE


def test_a_send_interrupted_by_a_crash_is_never_repeated_blind(db: Database):
    message_id = reply(db)
    with db.transaction() as session:  # a worker set it "sending", handed it over, and died
        session.get_one(Message, message_id).delivery_status = DeliveryStatus.SENDING
    sender = ScriptedSender("wamid.should-not-happen")
    OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"whatsapp": sender})})).run(deliver_job(db))

    assert sender.sent == []
    interrupted = message(db, message_id)
    assert (
        interrupted.delivery_status == DeliveryStatus.FAILED and interrupted.delivery_error == UNKNOWN_OUTCOME
    )
    with db.sessions() as session:  # the mirror that shows it to the rep is waiting
        assert session.scalar(
            select(Outbox.id).where(Outbox.kind == JobKind.MIRROR, Outbox.status == OutboxStatus.PENDING)
        )


def test_a_channel_that_is_not_configured_fails_clearly(db: Database):
    message_id = reply(db)
    OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {})})).run(deliver_job(db))
    assert "not configured" in (message(db, message_id).delivery_error or "")
