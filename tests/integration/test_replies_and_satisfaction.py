"""Replies with variables, edits and deletes before and after sending, and satisfaction ratings:
the use-cases against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.actions.conversation import do_close, do_reopen
from core.actions.replies import Edited, do_delete, do_edit, do_note, do_reply, do_retry_delivery
from core.actions.satisfaction import RATING_QUESTION
from core.db import Database
from core.errors import InvalidAction
from core.models import Author, Conversation, DeliveryStatus, Direction, Message, Status
from core.outbox import JobKind
from core.variables import UnfilledVariable
from tests.integration.test_use_cases import member, outbox_kinds, receive, whatsapp_text

CHANNEL = "C0LEADS"


def reply(db: Database, conversation_id: int, text: str, ts: str, actor=None):  # type: ignore[no-untyped-def]
    actor = actor or member(db)
    return db.run(
        lambda s: do_reply(s, conversation_id, text, actor=actor, slack_channel=CHANNEL, slack_ts=ts)
    )


def message(db: Database, message_id: int) -> Message:
    with db.sessions() as session:
        return session.get_one(Message, message_id)


def set_status(db: Database, message_id: int, status: DeliveryStatus) -> None:
    def change(session):  # type: ignore[no-untyped-def]
        session.get_one(Message, message_id).delivery_status = status

    db.run(change)


def test_a_reply_is_stored_and_sent_with_its_variables_filled(db: Database):
    received = receive(db, whatsapp_text("hi", message_id="wamid.v1", name="Jane Doe"))
    posted = reply(db, received.conversation_id, "Hi {first_name}, {my_first_name} here. {{ok}}", "1.1")
    assert message(db, posted.message_id).text == "Hi Jane, Ana here. {ok}"


def test_an_unfilled_variable_stores_nothing_and_changes_nothing(db: Database):
    received = receive(db, whatsapp_text("hi", message_id="wamid.v2"))
    with pytest.raises(UnfilledVariable, match="company"):
        reply(db, received.conversation_id, "How is {company}?", "1.2")
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1
        assert session.get_one(Conversation, received.conversation_id).status == Status.OPEN
    assert JobKind.DELIVER not in outbox_kinds(db, received.conversation_id)


def test_an_edit_before_sending_changes_what_the_lead_gets_and_after_sending_does_not(db: Database):
    received = receive(db, whatsapp_text("hi", message_id="wamid.e1"))
    ana = member(db)
    posted = reply(db, received.conversation_id, "Helo", "1.3", ana)
    edit = lambda text: db.run(lambda s: do_edit(s, CHANNEL, "1.3", text, actor=ana, note=False))  # noqa: E731
    assert edit("Hello {first_name}") == Edited.UPDATED
    assert message(db, posted.message_id).text == "Hello Jane"

    set_status(db, posted.message_id, DeliveryStatus.SENT)
    assert edit("Hello again") == Edited.TOO_LATE
    assert message(db, posted.message_id).text == "Hello Jane"
    assert db.run(lambda s: do_edit(s, CHANNEL, "9.9", "x", actor=ana, note=False)) == Edited.UNKNOWN


def test_an_unsent_reply_edited_into_a_note_is_never_sent(db: Database):
    received = receive(db, whatsapp_text("hi", message_id="wamid.e2"))
    ana = member(db)
    posted = reply(db, received.conversation_id, "our price is 10k", "1.4", ana)
    assert (
        db.run(lambda s: do_edit(s, CHANNEL, "1.4", "price is 10k", actor=ana, note=True)) == Edited.UPDATED
    )
    stored = message(db, posted.message_id)
    assert stored.direction == Direction.NOTE and stored.delivery_status is None


def test_an_edit_with_an_unfilled_variable_is_refused_and_keeps_the_earlier_text(db: Database):
    received = receive(db, whatsapp_text("hi", message_id="wamid.e3"))
    ana = member(db)
    posted = reply(db, received.conversation_id, "Hello", "1.5", ana)
    with pytest.raises(UnfilledVariable):
        db.run(lambda s: do_edit(s, CHANNEL, "1.5", "Hello {title}", actor=ana, note=False))
    assert message(db, posted.message_id).text == "Hello"


def test_a_reply_deleted_before_it_went_out_is_never_sent_nor_retried(db: Database):
    received = receive(db, whatsapp_text("hi", message_id="wamid.d1"))
    ana = member(db)
    posted = reply(db, received.conversation_id, "oops", "1.6", ana)
    assert db.run(lambda s: do_delete(s, CHANNEL, "1.6", actor=ana)) == Edited.WITHDRAWN
    stored = message(db, posted.message_id)
    assert stored.delivery_status == DeliveryStatus.FAILED and stored.deleted_at is not None
    with pytest.raises(InvalidAction, match="deleted"):
        db.run(lambda s: do_retry_delivery(s, received.conversation_id, posted.message_id, actor=ana))


def test_a_reply_deleted_after_it_went_out_is_too_late(db: Database):
    received = receive(db, whatsapp_text("hi", message_id="wamid.d2"))
    ana = member(db)
    posted = reply(db, received.conversation_id, "sent already", "1.7", ana)
    set_status(db, posted.message_id, DeliveryStatus.DELIVERED)
    assert db.run(lambda s: do_delete(s, CHANNEL, "1.7", actor=ana)) == Edited.TOO_LATE
    assert message(db, posted.message_id).delivery_status == DeliveryStatus.DELIVERED


def test_a_deleted_note_is_marked_deleted_and_is_not_called_withdrawn(db: Database):
    received = receive(db, whatsapp_text("hi", message_id="wamid.d3"))
    ana = member(db)
    noted = db.run(
        lambda s: do_note(
            s, received.conversation_id, "@bo check this", actor=ana, slack_channel=CHANNEL, slack_ts="1.8"
        )
    )
    assert db.run(lambda s: do_delete(s, CHANNEL, "1.8", actor=ana)) == Edited.UPDATED
    stored = message(db, noted.message_id)
    assert stored.deleted_at is not None and stored.direction == Direction.NOTE
    assert stored.delivery_status is None


def test_closing_asks_for_a_rating_and_the_answer_is_recorded_without_reopening(db: Database):
    received = receive(db, whatsapp_text("thanks, all clear", message_id="wamid.c1"))
    ana = member(db)
    db.run(lambda s: do_close(s, received.conversation_id, actor=ana, ask_rating=True))
    with db.sessions() as session:
        question = session.scalar(select(Message).where(Message.author == Author.SYSTEM))
        assert question is not None and question.text == RATING_QUESTION
        assert question.delivery_status == DeliveryStatus.QUEUED
    assert JobKind.DELIVER in outbox_kinds(db, received.conversation_id)

    receive(db, whatsapp_text("5", message_id="wamid.c2"))
    with db.sessions() as session:
        conversation = session.get_one(Conversation, received.conversation_id)
        assert (conversation.status, conversation.csat_score) == (Status.CLOSED, 5)
        assert conversation.waiting_since is None and conversation.unread_count == 1

    receive(db, whatsapp_text("4", message_id="wamid.c3"))  # answered already: a message like any other
    with db.sessions() as session:
        conversation = session.get_one(Conversation, received.conversation_id)
        assert (conversation.status, conversation.csat_score) == (Status.OPEN, 5)


def test_a_real_message_after_the_question_reopens_and_no_question_without_csat(db: Database):
    received = receive(db, whatsapp_text("hi", message_id="wamid.c4"))
    ana = member(db)
    db.run(lambda s: do_close(s, received.conversation_id, actor=ana, ask_rating=True))
    receive(db, whatsapp_text("Actually, one more question", message_id="wamid.c5"))
    with db.sessions() as session:
        conversation = session.get_one(Conversation, received.conversation_id)
        assert conversation.status == Status.OPEN and conversation.csat_score is None

    db.run(lambda s: do_close(s, received.conversation_id, actor=ana))
    db.run(lambda s: do_reopen(s, received.conversation_id, actor=ana))
    with db.sessions() as session:
        asked = session.scalar(
            select(func.count()).select_from(Message).where(Message.author == Author.SYSTEM)
        )
    assert asked == 1
