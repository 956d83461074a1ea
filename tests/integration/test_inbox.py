"""The inbox: stored raw once, processed after, and what our code cannot process parked — never lost."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import func, select

from channels.whatsapp.inbound import parse_webhook
from core import inbox
from core.db import Database
from core.errors import Deferred
from core.inbox import InboxRunner
from core.models import Conversation, Inbox, Lead, Message
from core.ports import Parsed
from core.queries.operations import work_summary
from tests.standins import meta_webhooks as meta

PHONE = "PN1"


def webhook(text: str, *, message_id: str, wa_id: str = "15550001111", name: str = "Jane") -> dict[str, Any]:
    return meta.text_message(wa_id=wa_id, name=name, text=text, message_id=message_id, phone_number_id=PHONE)


def raw(payload: Any) -> bytes:
    return json.dumps(payload).encode()  # Infinity and lone surrogates included, as Meta's JSON may carry


def texts(db: Database) -> list[str]:
    with db.sessions() as session:
        return list(session.scalars(select(Message.text).order_by(Message.id)))


def statuses(db: Database) -> list[str]:
    with db.sessions() as session:
        return [str(s) for s in session.scalars(select(Inbox.status).order_by(Inbox.id))]


def test_a_delivery_is_stored_once_however_often_the_provider_sends_it(db: Database):
    body = raw(webhook("hello", message_id="wamid.1"))
    first = inbox.store(db, "whatsapp", body)
    assert first is not None and inbox.store(db, "whatsapp", body) is None
    assert inbox.store(db, "whatsapp", body, key="provider-key-1") is not None  # its own key: its own row

    InboxRunner(db, {"whatsapp": parse_webhook}, ai_available=False).run()
    assert texts(db) == ["hello"]  # the second row repeats the message: recognised by its id


def test_what_our_code_cannot_process_is_parked_and_the_rest_of_the_batch_goes_on(db: Database):
    for n in range(3):
        inbox.store(db, "whatsapp", raw(webhook(f"message {n}", message_id=f"wamid.{n}")))

    def buggy(body: bytes) -> Parsed:  # a parser bug that only one delivery trips over
        if b"message 1" in body:
            raise KeyError("profile")
        return parse_webhook(body)

    InboxRunner(db, {"whatsapp": buggy}, ai_available=False).run()
    assert texts(db) == ["message 0", "message 2"]
    assert statuses(db) == ["done", "parked", "done"]
    with db.sessions() as session:
        summary = work_summary(session)
    assert summary.inbox["parked"] == 1 and "KeyError" in summary.parked[0].reason

    fixed = InboxRunner(db, {"whatsapp": parse_webhook}, ai_available=False)  # the fix is deployed
    assert len(fixed.replay(parked=True)) == 1
    assert sorted(texts(db)) == ["message 0", "message 1", "message 2"]
    assert statuses(db) == ["done", "done", "done"]


def test_values_that_do_not_fit_are_kept_cut_with_a_mark_never_lost(db: Database):
    bodies = [
        webhook("long name", message_id="wamid.name", name="N" * 300),
        webhook("nul \x00 inside", message_id="wamid.nul"),
        webhook("forty digits", message_id="wamid.from", wa_id="1" * 40),
        webhook("lone \ud800 surrogate", message_id="wamid.surrogate"),
    ]
    for body in bodies:
        inbox.store(db, "whatsapp", raw(body))
    InboxRunner(db, {"whatsapp": parse_webhook}, ai_available=False).run()

    assert statuses(db) == ["done"] * 4
    stored = texts(db)
    assert len(stored) == 4 and "\x00" not in stored[1] and stored[0] == "long name"
    with db.sessions() as session:
        names = list(session.scalars(select(Lead.name)))
    assert any(name and name.startswith("NNNN") and len(name) <= 200 for name in names)


def test_deliveries_nothing_can_read_are_parked_with_the_reason(db: Database):
    infinite = webhook("when?", message_id="wamid.inf")
    infinite["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = float("inf")
    deep = b'{"object": "whatsapp_business_account", "entry": ' + b"[" * 1_000 + b"1" + b"]" * 1_000 + b"}"
    inbox.store(db, "whatsapp", raw(infinite))
    inbox.store(db, "whatsapp", deep)
    InboxRunner(db, {"whatsapp": parse_webhook}, ai_available=False).run()

    assert statuses(db) == ["parked", "parked"] and texts(db) == []
    with db.sessions() as session:
        reasons = list(session.scalars(select(Inbox.last_error).order_by(Inbox.id)))
        kept = session.scalar(select(func.count()).select_from(Inbox).where(Inbox.body.is_not(None)))
    assert all(reasons) and kept == 2


def test_one_unreadable_message_parks_its_delivery_but_not_its_neighbours(db: Database):
    payload = webhook("fine", message_id="wamid.ok")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"].append({**value["messages"][0], "id": "wamid.bad", "timestamp": "not a time"})
    inbox.store(db, "whatsapp", raw(payload))
    runner = InboxRunner(db, {"whatsapp": parse_webhook}, ai_available=False)
    runner.run()
    assert texts(db) == ["fine"] and statuses(db) == ["parked"]

    runner.replay(parked=True)  # nothing fixed: the readable one is not stored twice
    assert texts(db) == ["fine"] and statuses(db) == ["parked"]


def test_a_teammates_messages_are_acted_on_in_the_order_written_even_when_one_must_wait(db: Database):
    handled: list[bytes] = []
    not_yet = [b"first"]

    def handle(body: bytes) -> None:  # the first lookup does not answer once
        if body in not_yet:
            not_yet.remove(body)
            raise Deferred(0.2, "Slack did not answer who wrote it")
        handled.append(body)

    inbox.store(db, "slack", b"first")
    inbox.store(db, "slack", b"second")
    runner = InboxRunner(db, {}, handlers={"slack": handle}, ai_available=False)
    runner.run()
    assert handled == []  # "second" waits for "first", which waits for Slack

    deadline = time.monotonic() + 10
    while handled != [b"first", b"second"] and time.monotonic() < deadline:
        time.sleep(0.05)  # the sweep's part: run again once the waits are over
        runner.run()
    assert handled == [b"first", b"second"] and statuses(db) == ["done", "done"]


def test_a_webhook_carrying_a_backlog_is_stored_once_each_in_order(db: Database):
    payload = webhook("m0", message_id="wamid.b0")
    value = payload["entry"][0]["changes"][0]["value"]
    first = value["messages"][0]
    value["messages"] = [{**first, "id": f"wamid.b{n}", "text": {"body": f"m{n}"}} for n in range(300)]
    value["messages"].append(value["messages"][5])  # Meta repeats one inside the same body
    inbox.store(db, "whatsapp", raw(payload))
    inbox.store(db, "whatsapp", raw(webhook("m7", message_id="wamid.b7")))  # and once more on its own
    InboxRunner(db, {"whatsapp": parse_webhook}, ai_available=False).run()

    assert texts(db) == [f"m{n}" for n in range(300)]
    with db.sessions() as session:
        conversation = session.scalar(select(Conversation))
        assert conversation is not None and conversation.unread_count == 300
