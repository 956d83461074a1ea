"""A rep's file in the thread reaches the lead: the deliverer fetches it from Slack and hands the bytes on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.slack_client import SlackGateway
from core.actions.common import Actor
from core.actions.inbound import do_receive
from core.actions.members import do_register_member
from core.actions.replies import do_note, do_reply
from core.coordination import LocalCoordinator
from core.db import Database
from core.delivery import Deliverer
from core.models import DeliveryStatus, Message, Outbox
from core.outbox import JobKind, OutboxRunner
from core.ports import Attachment
from tests.conftest import SPECS, handlers
from tests.integration.test_delivery import ScriptedSender, deliver_job
from tests.integration.test_use_cases import whatsapp_text
from tests.standins.slack_api import SlackStandIn

TOKEN = "xoxb-reply-files"
QUOTE = b"%PDF-1.4 the quote"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(SPECS / "slack" / "methods", bot_token=TOKEN) as standin:
        standin.add_channel("C1", "leads")
        yield standin
        assert standin.violations == []


def reply_with(
    db: Database, attachments: list[Attachment], text: str = "Here it is", *, note: bool = False
) -> int:
    conversation_id = db.run(
        lambda s: do_receive(s, whatsapp_text("hi", message_id="w1"), ai_available=False)
    ).conversation_id
    ana = Actor.member(db.run(lambda s: do_register_member(s, "U1", name="Ana", email=None)))
    use_case = do_note if note else do_reply
    extra = {} if note else {"attachments": attachments}
    return db.run(
        lambda s: use_case(s, conversation_id, text, actor=ana, slack_channel="C1", slack_ts="1.1", **extra)
    ).message_id


def shared(file: dict[str, object]) -> Attachment:
    return Attachment(
        kind="file",
        name=str(file["name"]),
        mime_type=str(file["mimetype"]),
        ref={"slack_file_id": str(file["id"])},
        slack_file_id=str(file["id"]),
    )


def runner(db: Database, slack: SlackStandIn, sender: ScriptedSender) -> OutboxRunner:
    gateway = SlackGateway(token=TOKEN, base_url=slack.base_url, coordinator=LocalCoordinator())
    deliverer = Deliverer(db, {"whatsapp": sender}, slack_files=gateway.download)
    return OutboxRunner(db, handlers({JobKind.DELIVER: deliverer}))


def stored(db: Database, message_id: int) -> Message:
    with db.sessions() as session:
        return session.get_one(Message, message_id)


def test_the_deliverer_hands_the_sender_the_file_bytes_from_slack(db: Database, slack: SlackStandIn):
    quote = slack.add_file("U1", "quote.pdf", "application/pdf", QUOTE)
    message_id = reply_with(db, [shared(quote)])
    sender = ScriptedSender("wamid.1")

    runner(db, slack, sender).run(deliver_job(db))

    [sent] = sender.sent
    assert sent.text == "Here it is"
    assert [(f.name, f.mime_type, f.content) for f in sent.files] == [("quote.pdf", "application/pdf", QUOTE)]
    assert slack.downloads == [quote["id"]]
    assert stored(db, message_id).delivery_status == DeliveryStatus.SENT


def test_a_file_alone_is_a_reply(db: Database, slack: SlackStandIn):
    quote = slack.add_file("U1", "quote.pdf", "application/pdf", QUOTE)
    reply_with(db, [shared(quote)], text="")
    sender = ScriptedSender("wamid.1")
    runner(db, slack, sender).run(deliver_job(db))
    assert sender.sent[0].files[0].content == QUOTE and sender.sent[0].text == ""


def test_a_file_deleted_in_slack_fails_the_reply_with_the_reason(db: Database, slack: SlackStandIn):
    gone = {"id": "F0GONE", "name": "old.pdf", "mimetype": "application/pdf"}
    message_id = reply_with(db, [shared(gone)])
    sender = ScriptedSender("wamid.1")

    runner(db, slack, sender).run(deliver_job(db))

    failed = stored(db, message_id)
    assert failed.delivery_status == DeliveryStatus.FAILED
    assert "file_not_found" in (failed.delivery_error or "") and sender.sent == []


def test_a_file_over_the_cap_is_not_downloaded(db: Database, slack: SlackStandIn):
    quote = slack.add_file("U1", "film.mp4", "video/mp4", b"0")
    big = {**shared(quote), "size": 200 * 1024 * 1024}
    message_id = reply_with(db, [big])  # type: ignore[list-item]
    runner(db, slack, ScriptedSender("wamid.1")).run(deliver_job(db))
    assert "200.0 MB, more than the 100 MB" in (stored(db, message_id).delivery_error or "")
    assert slack.downloads == []


def test_slack_down_leaves_the_reply_queued_for_the_next_try(db: Database, slack: SlackStandIn):
    quote = slack.add_file("U1", "quote.pdf", "application/pdf", QUOTE)
    message_id = reply_with(db, [shared(quote)])
    sender = ScriptedSender("wamid.1")
    slack.set_outage(True)

    runner(db, slack, sender).run(deliver_job(db))

    assert stored(db, message_id).delivery_status == DeliveryStatus.QUEUED  # not "sending": nothing left
    with db.sessions() as session:
        assert session.get_one(Outbox, deliver_job(db)).attempts == 1
    assert sender.sent == []


def test_a_note_with_a_file_sends_nothing(db: Database, slack: SlackStandIn):
    reply_with(db, [], text="internal: see the attached", note=True)
    with db.sessions() as session:
        assert session.query(Outbox).filter_by(kind=JobKind.DELIVER).count() == 0
