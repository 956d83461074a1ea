"""Email through core on both databases: the Message-ID is stored before the send, a reply threads
under the lead's mail, a bounce fails the reply, an out-of-office reply is not the lead answering."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage

from sqlalchemy import select

from channels.email import parse_mail
from core.actions.common import Actor
from core.actions.conversation import do_close
from core.actions.inbound import do_receive, do_record_delivery
from core.actions.members import do_register_member
from core.actions.replies import do_reply
from core.db import Database
from core.delivery import Deliverer
from core.models import Conversation, DeliveryStatus, Message, Status, utcnow
from core.outbox import JobKind, OutboxRunner
from core.ports import DeliveryUpdate, Outbound, PartSent, SendReceipt, ignore_part
from tests.conftest import handlers
from tests.integration.test_delivery import deliver_job

OURS = Address("Acme Sales", "sales", "acme.test")


def lead_mail(text: str, *, message_id: str, references: str | None = None, **headers: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Jane Doe <jane@lead.test>"
    mail["To"] = "sales+spring@acme.test"
    mail["Subject"] = headers.pop("subject", "Pricing")
    mail["Message-ID"] = message_id
    if references:
        mail["References"] = references
        mail["In-Reply-To"] = references.split()[-1]
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(text)
    return mail.as_bytes()


def receive(db: Database, raw: bytes) -> int:
    [inbound] = parse_mail(raw, ours=OURS).messages
    return db.run(lambda s: do_receive(s, inbound, ai_available=False)).conversation_id


class RecordingMailSender:
    """A sender that names its messages, as email's does, and notes what the database held for the
    message at the moment it was handed over."""

    name = "email"

    def __init__(self, db: Database) -> None:
        self.db = db
        self.sent: list[tuple[Outbound, str | None, DeliveryStatus | None]] = []

    def new_message_id(self) -> str:
        return f"<ours-{len(self.sent) + 1}@acme.test>"

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        with self.db.sessions() as session:
            stored = session.get_one(Message, message.message_id)
            self.sent.append((message, stored.provider_message_id, stored.delivery_status))
        assert message.provider_message_id is not None
        return SendReceipt(message.provider_message_id)


def rep_replies(db: Database, conversation_id: int, text: str, ts: str) -> int:
    ana = Actor.member(db.run(lambda s: do_register_member(s, "U1", name="Ana", email=None)))
    return db.run(
        lambda s: do_reply(s, conversation_id, text, actor=ana, slack_channel="C1", slack_ts=ts)
    ).message_id


def test_the_message_id_is_stored_before_sending_and_the_reply_threads_under_the_lead(db: Database):
    conversation_id = receive(db, lead_mail("How much?", message_id="<q1@lead.test>"))
    receive(
        db,
        lead_mail(
            "And shipping?", message_id="<q2@lead.test>", references="<q1@lead.test>", subject="Re: Pricing"
        ),
    )
    message_id = rep_replies(db, conversation_id, "10 EUR, shipping included.", "1.1")
    sender = RecordingMailSender(db)
    OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"email": sender})})).run(deliver_job(db))

    [(outbound, stored_id, stored_status)] = sender.sent
    assert stored_id == outbound.provider_message_id == "<ours-1@acme.test>"  # kept before the send
    assert stored_status == DeliveryStatus.SENDING
    assert outbound.to == "jane@lead.test <q1@lead.test>"
    assert outbound.in_reply_to == "<q2@lead.test>"
    assert outbound.references == ("<q1@lead.test>", "<q2@lead.test>")
    assert outbound.subject == "Re: Pricing"
    with db.sessions() as session:
        sent = session.get_one(Message, message_id)
        assert (sent.provider_message_id, sent.delivery_status) == ("<ours-1@acme.test>", DeliveryStatus.SENT)
        conversation = session.get_one(Conversation, conversation_id)
        assert conversation.campaign is not None and conversation.campaign.name == "spring"


def test_a_bounce_for_our_message_id_fails_the_reply_with_the_reason(db: Database):
    conversation_id = receive(db, lead_mail("Hi", message_id="<q1@lead.test>"))
    message_id = rep_replies(db, conversation_id, "Hello!", "1.1")
    sender = RecordingMailSender(db)
    OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"email": sender})})).run(deliver_job(db))
    bounce = (
        b"From: MAILER-DAEMON@acme.test\r\nTo: sales@acme.test\r\nMessage-ID: <dsn@acme.test>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; acme.test\r\n\r\n"
        b"Final-Recipient: rfc822; jane@lead.test\r\nAction: failed\r\nStatus: 5.2.2\r\n"
        b"Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <ours-1@acme.test>\r\n--B--\r\n"
    )

    [update] = parse_mail(bounce, ours=OURS).updates
    assert db.run(lambda s: do_record_delivery(s, update))

    with db.sessions() as session:
        failed = session.get_one(Message, message_id)
        assert failed.delivery_status == DeliveryStatus.FAILED
        assert failed.delivery_error == "jane@lead.test: 552 5.2.2 Mailbox full (5.2.2)"


def test_an_out_of_office_reply_is_shown_but_does_not_reopen_or_count(db: Database):
    conversation_id = receive(db, lead_mail("Hi", message_id="<q1@lead.test>"))
    rep_replies(db, conversation_id, "Hello!", "1.1")
    ana = Actor.member(db.run(lambda s: do_register_member(s, "U1", name="Ana", email=None)))
    db.run(lambda s: do_close(s, conversation_id, actor=ana))

    auto = lead_mail(
        "I am away until Monday.",
        message_id="<ooo@lead.test>",
        references="<q1@lead.test>",
        subject="Automatic reply: Pricing",
        Auto_Submitted="auto-replied",
    )
    assert receive(db, auto) == conversation_id

    with db.sessions() as session:
        conversation = session.get_one(Conversation, conversation_id)
        assert conversation.status == Status.CLOSED
        assert conversation.unread_count == 0 and conversation.waiting_since is None
        shown = session.scalars(select(Message).where(Message.provider_message_id == "<ooo@lead.test>")).one()
        assert shown.kind == "auto_reply" and "away until Monday" in shown.text

    receive(
        db, lead_mail("Back now, still interested", message_id="<q3@lead.test>", references="<q1@lead.test>")
    )
    with db.sessions() as session:
        conversation = session.get_one(Conversation, conversation_id)
        assert conversation.status == Status.OPEN and conversation.unread_count == 1


class BouncedWhileSending(RecordingMailSender):
    """The bounce is read from the mailbox before the sending worker records the send."""

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        assert message.provider_message_id is not None
        bounce = DeliveryUpdate(
            "email", message.provider_message_id, DeliveryStatus.FAILED, utcnow(), error="Mailbox full"
        )
        assert not self.db.run(
            lambda s: do_record_delivery(s, bounce)
        )  # kept aside: not recorded as sent yet
        return super().send(message, on_part)


def test_a_bounce_read_before_the_send_is_recorded_still_fails_the_reply(db: Database):
    conversation_id = receive(db, lead_mail("Hi", message_id="<q1@lead.test>"))
    message_id = rep_replies(db, conversation_id, "Hello!", "1.1")
    sender = BouncedWhileSending(db)
    OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"email": sender})})).run(deliver_job(db))

    with db.sessions() as session:
        failed = session.get_one(Message, message_id)
        assert (failed.delivery_status, failed.delivery_error) == (DeliveryStatus.FAILED, "Mailbox full")
