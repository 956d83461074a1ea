"""Races the real databases must settle: two workers or two clicks at once, one outcome."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from core.actions.common import Actor
from core.actions.conversation import do_add_tag
from core.actions.inbound import do_receive
from core.actions.members import do_register_member
from core.actions.replies import do_reply
from core.db import Database
from core.delivery import Deliverer
from core.models import Conversation, DeliveryStatus, Lead, Message, Outbox
from core.outbox import JobKind, OutboxRunner
from core.ports import Outbound, PartSent, SendReceipt, ignore_part
from tests.conftest import handlers
from tests.integration.test_use_cases import load, whatsapp_text

RACERS = 8


def race(fn: Callable[[int], object], n: int = RACERS) -> list[object]:
    """Start n calls as close together as threads allow."""
    gate = threading.Barrier(n)

    def go(i: int) -> object:
        gate.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(go, range(n)))


def count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_the_same_webhook_delivered_at_once_stores_one_message(db: Database):
    race(
        lambda _: db.run(
            lambda s: do_receive(s, whatsapp_text("hi", message_id="wamid.same"), ai_available=False)
        )
    )
    assert (count(db, Lead), count(db, Conversation), count(db, Message)) == (1, 1, 1)


def test_a_new_leads_messages_at_once_make_one_conversation(db: Database):
    results = race(
        lambda i: db.run(
            lambda s: do_receive(s, whatsapp_text(f"m{i}", message_id=f"wamid.{i}"), ai_available=False)
        )
    )
    assert count(db, Conversation) == 1 and count(db, Message) == RACERS
    assert load(db, results[0].conversation_id).unread_count == RACERS  # type: ignore[attr-defined]


def test_tags_added_at_once_are_all_kept(db: Database):
    conversation_id = db.run(
        lambda s: do_receive(s, whatsapp_text("hi", message_id="w"), ai_available=False)
    ).conversation_id
    ana = Actor.member(db.run(lambda s: do_register_member(s, "U1", name="Ana", email=None)))
    race(lambda i: db.run(lambda s: do_add_tag(s, conversation_id, f"tag{i}", actor=ana)))
    assert sorted(t.name for t in load(db, conversation_id).tags) == sorted(f"tag{i}" for i in range(RACERS))


class CountingSender:
    channel = "whatsapp"

    def __init__(self) -> None:
        self.sent: list[Outbound] = []
        self._guard = threading.Lock()

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        with self._guard:
            self.sent.append(message)
            return SendReceipt(f"wamid.out{len(self.sent)}")


def test_two_workers_running_the_same_delivery_send_once(db: Database):
    conversation_id = db.run(
        lambda s: do_receive(s, whatsapp_text("hi", message_id="w"), ai_available=False)
    ).conversation_id
    ana = Actor.member(db.run(lambda s: do_register_member(s, "U1", name="Ana", email=None)))
    posted = db.run(
        lambda s: do_reply(s, conversation_id, "Hello", actor=ana, slack_channel="C1", slack_ts="1.1")
    )
    with db.sessions() as session:
        deliver_id = session.scalar(select(Outbox.id).where(Outbox.kind == JobKind.DELIVER))
    sender = CountingSender()
    runner = OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"whatsapp": sender})}))

    ran = race(lambda _: runner.run(deliver_id))

    assert [bool(outcome) for outcome in ran].count(True) == 1
    assert len(sender.sent) == 1 and sender.sent[0].text == "Hello" and sender.sent[0].to == "15551230001"
    with db.sessions() as session:
        assert session.get_one(Message, posted.message_id).delivery_status == DeliveryStatus.SENT
