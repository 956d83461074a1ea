"""Messages our own account wrote on the provider's side (a rep typing in LinkedIn itself): kept as our
outbound message, never sent again, never the lead answering — and our sends' echoes are not doubled,
even when the echo beats the send's receipt."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from core import inbox
from core.actions.common import Actor
from core.actions.inbound import do_receive
from core.actions.members import do_register_member
from core.actions.replies import do_reply
from core.db import Database
from core.delivery import Deliverer
from core.errors import Deferred
from core.inbox import InboxRunner
from core.models import (
    AIMode,
    Author,
    ChannelAccount,
    Conversation,
    DeliveryStatus,
    Direction,
    Inbox,
    InboxStatus,
    Message,
    Outbox,
    Status,
    utcnow,
)
from core.outbox import JobKind, OutboxRunner
from core.ports import Inbound, LeadProfile, Outbound, Parsed, PartSent, SendReceipt, ignore_part
from tests.conftest import handlers

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CHANNEL, ACCOUNT, CHAT = "linkedin", "ACC1", "chat-1"
LEAD = LeadProfile(provider_id="ACoLEAD", name="Jane Doe", profile_url="https://www.linkedin.com/in/jane")


def inbound(text: str, *, message_id: str, from_us: bool = False) -> Inbound:
    return Inbound(
        channel=CHANNEL,
        channel_account=ACCOUNT,
        provider_thread_id=CHAT,
        provider_message_id=message_id,
        sender=LEAD,
        sent_at=NOW,
        text=text,
        from_us=from_us,
    )


def parse(body: bytes) -> Parsed:
    """A channel's parser, as plain as can be: one message per body."""
    data = json.loads(body)
    return Parsed(messages=[inbound(data["text"], message_id=data["id"], from_us=data["from_us"])])


def delivery(text: str, *, message_id: str, from_us: bool) -> bytes:
    return json.dumps({"text": text, "id": message_id, "from_us": from_us}).encode()


def receive(db: Database, message: Inbound, *, ai: bool = False) -> int:
    return db.run(lambda s: do_receive(s, message, ai_available=ai)).conversation_id


def conversation(db: Database, conversation_id: int) -> Conversation:
    with db.sessions() as session:
        return session.get_one(Conversation, conversation_id)


def messages(db: Database) -> list[tuple[Direction, str, DeliveryStatus | None]]:
    with db.sessions() as session:
        rows = session.execute(
            select(Message.direction, Message.text, Message.delivery_status).order_by(Message.id)
        ).all()
    return [(row.direction, row.text, row.delivery_status) for row in rows]


def test_a_message_we_wrote_on_linkedin_is_our_sent_reply_and_ends_the_leads_wait(db: Database):
    conversation_id = receive(db, inbound("Do you ship to Lisbon?", message_id="m1"), ai=True)
    assert conversation(db, conversation_id).unread_count == 1

    again = receive(db, inbound("Yes, every week.", message_id="m2", from_us=True))

    assert again == conversation_id
    assert messages(db) == [
        (Direction.INBOUND, "Do you ship to Lisbon?", None),
        (Direction.OUTBOUND, "Yes, every week.", DeliveryStatus.SENT),
    ]
    with db.sessions() as session:
        ours = session.scalars(select(Message).where(Message.provider_message_id == "m2")).one()
        assert ours.author == Author.MEMBER and ours.member_id is None  # written outside Slack
        kinds = list(session.scalars(select(Outbox.kind).where(Outbox.message_id == ours.id)))
    assert JobKind.DELIVER not in kinds  # never sent again
    answered = conversation(db, conversation_id)
    assert answered.unread_count == 0 and answered.waiting_since is None
    assert answered.first_response_at is not None
    assert answered.status == Status.PENDING and answered.ai_mode == AIMode.PAUSED  # a person took over


def test_the_same_message_of_ours_twice_is_stored_once(db: Database):
    receive(db, inbound("hi", message_id="m1"))
    receive(db, inbound("hello Jane", message_id="m2", from_us=True))
    receive(db, inbound("hello Jane", message_id="m2", from_us=True))
    assert [text for _d, text, _s in messages(db)] == ["hi", "hello Jane"]


def test_a_lead_writing_after_our_linkedin_message_opens_the_conversation_again(db: Database):
    conversation_id = receive(db, inbound("hi", message_id="m1"))
    receive(db, inbound("hello Jane", message_id="m2", from_us=True))
    receive(db, inbound("thanks!", message_id="m3"))

    after = conversation(db, conversation_id)
    assert after.status == Status.OPEN and after.unread_count == 1 and after.waiting_since is not None


def test_a_chat_we_started_on_linkedin_is_a_conversation_with_the_lead_waiting_for_nothing(db: Database):
    conversation_id = receive(db, inbound("Hi Jane, saw your post", message_id="m1", from_us=True))

    started = conversation(db, conversation_id)
    assert started.lead.name == "Jane Doe" and started.lead.profile_url == "https://www.linkedin.com/in/jane"
    assert started.status == Status.PENDING and started.unread_count == 0 and started.waiting_since is None
    assert messages(db) == [(Direction.OUTBOUND, "Hi Jane, saw your post", DeliveryStatus.SENT)]


class EchoingSender:
    """The provider takes our message and, before it has even answered, its webhook echoes it back:
    the echo is stored and the inbox runs while our send's receipt is not recorded yet."""

    name = CHANNEL

    def __init__(self, db: Database, runner: InboxRunner) -> None:
        self.db = db
        self.runner = runner

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        inbox.store(self.db, CHANNEL, delivery(message.text, message_id="sent-1", from_us=True))
        self.runner.run()
        return SendReceipt("sent-1")


def test_an_echo_of_our_send_that_beats_the_receipt_waits_for_it_and_is_not_doubled(db: Database):
    runner = InboxRunner(db, {CHANNEL: parse}, ai_available=False)
    conversation_id = receive(db, inbound("hi", message_id="m1"))
    ana = Actor.member(db.run(lambda s: do_register_member(s, "U1", name="Ana", email=None)))
    db.run(
        lambda s: do_reply(s, conversation_id, "Hello Jane", actor=ana, slack_channel="C1", slack_ts="1.1")
    )
    deliverer = Deliverer(db, {CHANNEL: EchoingSender(db, runner)})
    with db.sessions() as session:
        job = session.scalars(select(Outbox.id).where(Outbox.kind == JobKind.DELIVER)).one()

    OutboxRunner(db, handlers({JobKind.DELIVER: deliverer})).run(job)

    # The echo came while the send was in flight: put off, not stored, not parked.
    with db.sessions() as session:
        echo = session.scalars(select(Inbox)).one()
        assert echo.status == InboxStatus.RUNNING and echo.locked_until is not None
        assert echo.locked_until > utcnow() and echo.last_error is None
    assert messages(db) == [
        (Direction.INBOUND, "hi", None),
        (Direction.OUTBOUND, "Hello Jane", DeliveryStatus.SENT),
    ]

    with db.transaction() as session:  # its time comes
        session.execute(update(Inbox).values(locked_until=utcnow() - timedelta(seconds=1)))
    runner.run()

    with db.sessions() as session:
        assert session.scalars(select(Inbox.status)).one() == InboxStatus.DONE
    assert [text for _d, text, _s in messages(db)] == ["hi", "Hello Jane"]  # the echo is our reply


def test_a_message_of_ours_waits_while_a_send_is_in_flight(db: Database):
    conversation_id = receive(db, inbound("hi", message_id="m1"))
    ana = Actor.member(db.run(lambda s: do_register_member(s, "U1", name="Ana", email=None)))
    posted = db.run(
        lambda s: do_reply(s, conversation_id, "Hello", actor=ana, slack_channel="C1", slack_ts="1.1")
    )
    with db.transaction() as session:
        session.execute(
            update(Message)
            .where(Message.id == posted.message_id)
            .values(delivery_status=DeliveryStatus.SENDING)
        )

    try:
        receive(db, inbound("Hello", message_id="x1", from_us=True))
    except Deferred as exc:
        assert exc.seconds > 0
    else:
        raise AssertionError("a message of ours during a send in flight must wait for the receipt")
    receive(db, inbound("a lead's message does not wait", message_id="m2"))
    assert len(messages(db)) == 3


def test_a_parser_that_says_not_yet_puts_the_delivery_off_without_parking_it(db: Database):
    answers: list[Exception | None] = [Deferred(2.0, "our own account id did not answer"), None]

    def waiting_parser(body: bytes) -> Parsed:
        problem = answers.pop(0)
        if problem is not None:
            raise problem
        return parse(body)

    runner = InboxRunner(db, {CHANNEL: waiting_parser}, ai_available=False)
    inbox.store(db, CHANNEL, delivery("hi", message_id="m1", from_us=False))
    runner.run()
    with db.sessions() as session:
        row = session.scalars(select(Inbox)).one()
        assert row.status == InboxStatus.RUNNING and row.last_error is None
    assert messages(db) == []

    with db.transaction() as session:
        session.execute(update(Inbox).values(locked_until=utcnow() - timedelta(seconds=1)))
    runner.run()
    assert [text for _d, text, _s in messages(db)] == ["hi"]


def test_only_the_leads_messages_count_as_the_account_last_hearing_from_a_lead(db: Database):
    runner = InboxRunner(db, {CHANNEL: parse}, ai_available=False)
    inbox.store(db, CHANNEL, delivery("hi", message_id="m1", from_us=False))
    runner.run()
    with db.sessions() as session:
        heard = session.scalars(select(ChannelAccount.last_message_at)).one()
    assert heard is not None

    inbox.store(db, CHANNEL, delivery("hello Jane", message_id="m2", from_us=True))
    runner.run()
    with db.sessions() as session:
        assert session.scalars(select(ChannelAccount.last_message_at)).one() == heard
    assert [text for _d, text, _s in messages(db)] == ["hi", "hello Jane"]


def test_the_echo_of_a_reply_whose_outcome_was_unknown_marks_it_sent_instead_of_a_second_message(
    db: Database,
):
    conversation_id = receive(db, inbound("hi", message_id="m1"))
    ana = Actor.member(db.run(lambda s: do_register_member(s, "U1", name="Ana", email=None)))
    posted = db.run(
        lambda s: do_reply(s, conversation_id, "Hello Jane", actor=ana, slack_channel="C1", slack_ts="1.1")
    )
    with db.transaction() as session:  # a worker died after handing it to the provider
        session.execute(
            update(Message)
            .where(Message.id == posted.message_id)
            .values(delivery_status=DeliveryStatus.SENDING)
        )
        job = session.scalars(select(Outbox.id).where(Outbox.kind == JobKind.DELIVER)).one()
    nobody = Deliverer(db, {})  # the retry must not send: it finds the message still sending
    OutboxRunner(db, handlers({JobKind.DELIVER: nobody})).run(job)
    with db.sessions() as session:
        failed = session.get_one(Message, posted.message_id)
        assert (
            failed.delivery_status == DeliveryStatus.FAILED
            and failed.delivery_error_code == "unknown_outcome"
        )

    receive(db, inbound("Hello Jane", message_id="echo-1", from_us=True))  # LinkedIn reports it: it arrived
    receive(db, inbound("Written in LinkedIn", message_id="own-1", from_us=True))

    with db.sessions() as session:
        settled = session.get_one(Message, posted.message_id)
        assert settled.provider_message_id == "echo-1" and settled.delivery_error is None
    assert messages(db) == [
        (Direction.INBOUND, "hi", None),
        (Direction.OUTBOUND, "Hello Jane", DeliveryStatus.SENT),
        (Direction.OUTBOUND, "Written in LinkedIn", DeliveryStatus.SENT),
    ]
