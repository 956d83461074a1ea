"""A lead's files in the Slack thread: uploaded once, in order, after their entry; failures said, not lost."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Mapping
from datetime import timedelta

import pytest

from bot.mirror import Mirror
from bot.slack_client import SlackGateway
from core.actions.inbound import do_receive
from core.coordination import LocalCoordinator
from core.db import Database
from core.errors import ChannelBroken, PermanentDelivery, RetryableDelivery
from core.models import Conversation, Message, utcnow
from core.ports import Attachment, FetchedFile, Inbound
from core.routing import Routes
from tests.conftest import SPECS
from tests.integration.test_use_cases import whatsapp_text
from tests.standins.slack_api import SlackStandIn

TOKEN = "xoxb-files-test"
CHANNEL = "C0LEADS"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100
_ids = itertools.count()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(SPECS / "slack" / "methods", bot_token=TOKEN) as standin:
        standin.add_channel(CHANNEL, "leads")
        yield standin
        assert standin.violations == []


class Provider:
    """The lead channel's side of `fetch_file`: what it holds, and how it fails when told to."""

    def __init__(self) -> None:
        self.files = {"media-1": FetchedFile("photo.png", "image/png", PHOTO)}
        self.fetched: list[str] = []
        self.failures: list[Exception] = []

    def fetch(self, channel: str, ref: Mapping[str, str]) -> FetchedFile:
        assert channel == "whatsapp"
        self.fetched.append(ref["media_id"])
        if self.failures:
            raise self.failures.pop(0)
        return self.files[ref["media_id"]]


def make_mirror(db: Database, slack: SlackStandIn, provider: Provider) -> Mirror:
    # A burst wide enough for a whole thread: these tests are about files and order, not pacing.
    gateway = SlackGateway(token=TOKEN, base_url=slack.base_url, coordinator=LocalCoordinator(), burst=10)
    return Mirror(db, gateway, routes=Routes(default=CHANNEL), ai_available=False, fetch_file=provider.fetch)


def receive_photo(db: Database, caption: str = "our office <!channel>", media_id: str = "media-1") -> int:
    attachment = Attachment(kind="image", name="photo.png", mime_type="image/png", ref={"media_id": media_id})
    attachment["caption"] = caption
    inbound: Inbound = dataclasses.replace(
        whatsapp_text(f"[image] {caption}", message_id=f"wamid.f{next(_ids)}"),
        kind="image",
        attachments=[attachment],
    )
    return db.run(lambda s: do_receive(s, inbound, ai_available=False)).conversation_id


def receive_text(db: Database, text: str) -> None:
    db.run(
        lambda s: do_receive(s, whatsapp_text(text, message_id=f"wamid.t{next(_ids)}"), ai_available=False)
    )


def thread(db: Database, slack: SlackStandIn, conversation_id: int) -> list[dict[str, object]]:
    with db.sessions() as session:
        card_ts = session.get_one(Conversation, conversation_id).slack_thread_ts
    assert card_ts is not None
    return slack.replies(CHANNEL, card_ts)


def stored_attachments(db: Database) -> list[list[Attachment]]:
    with db.sessions() as session:
        return [m.attachments for m in session.query(Message).order_by(Message.id)]


def test_a_lead_photo_follows_its_entry_as_a_file_with_its_caption_and_the_next_message_after_it(
    db: Database, slack: SlackStandIn
):
    provider = Provider()
    conversation_id = receive_photo(db)
    receive_text(db, "did you get it?")

    make_mirror(db, slack, provider).sync(conversation_id)

    entry, share, after = thread(db, slack, conversation_id)
    assert "[image] our office" in str(entry["text"])
    assert share["text"] == "our office &lt;!channel&gt;"  # the caption, never a ping
    [(_, uploaded)] = slack.thread_files(CHANNEL, str(entry["thread_ts"]))
    assert (uploaded.title, uploaded.content) == ("photo.png", PHOTO)
    assert "did you get it?" in str(after["text"])
    assert stored_attachments(db)[0][0]["slack_file_id"] == uploaded.id


def test_mirroring_twice_uploads_once(db: Database, slack: SlackStandIn):
    provider = Provider()
    mirror = make_mirror(db, slack, provider)
    conversation_id = receive_photo(db)
    mirror.sync(conversation_id)
    mirror.sync(conversation_id)
    assert len(slack.calls_to("files.completeUploadExternal")) == 1
    assert provider.fetched == ["media-1"]


def test_a_provider_hiccup_is_retried_and_the_thread_waits_in_order(db: Database, slack: SlackStandIn):
    provider = Provider()
    provider.failures.append(RetryableDelivery("WhatsApp: Something went wrong"))
    mirror = make_mirror(db, slack, provider)
    conversation_id = receive_photo(db)
    receive_text(db, "hello?")

    with pytest.raises(RetryableDelivery):  # the outbox runs the mirror again later
        mirror.sync(conversation_id)
    assert len(thread(db, slack, conversation_id)) == 1  # the entry; "hello?" waits for the photo
    mirror.sync(conversation_id)

    entry, share, after = thread(db, slack, conversation_id)
    assert share.get("files") and "hello?" in str(after["text"])
    assert len([m for m in (entry, share, after) if "[image]" in str(m["text"])]) == 1  # entry once


def test_an_expired_file_is_said_in_the_thread_once_and_the_text_stays(db: Database, slack: SlackStandIn):
    provider = Provider()
    provider.failures.append(PermanentDelivery("the media is no longer available (expired)"))
    mirror = make_mirror(db, slack, provider)
    conversation_id = receive_photo(db, caption="my invoice")

    mirror.sync(conversation_id)
    mirror.sync(conversation_id)

    entry, notice = thread(db, slack, conversation_id)
    assert "my invoice" in str(entry["text"])
    assert "photo.png could not be shown here" in str(notice["text"])
    assert "expired" in str(notice["text"])
    assert stored_attachments(db)[0][0]["slack_error"].endswith("(expired)")
    assert slack.calls_to("files.getUploadURLExternal") == []


def test_a_file_over_the_cap_is_not_fetched(db: Database, slack: SlackStandIn):
    provider = Provider()
    conversation_id = receive_photo(db)
    with db.transaction() as session:
        message = session.query(Message).one()
        message.attachments = [{**message.attachments[0], "size": 300 * 1024 * 1024}]

    make_mirror(db, slack, provider).sync(conversation_id)

    _, notice = thread(db, slack, conversation_id)
    assert "300.0 MB, more than the 100 MB" in str(notice["text"])
    assert provider.fetched == []


def test_an_upload_whose_answer_was_lost_is_not_shared_twice(db: Database, slack: SlackStandIn):
    provider = Provider()
    mirror = make_mirror(db, slack, provider)
    conversation_id = receive_photo(db)
    mirror.sync(conversation_id)
    # What a worker leaves behind when it dies after Slack completed the share, before recording it:
    with db.transaction() as session:
        message = session.query(Message).one()
        file_id = message.attachments[0]["slack_file_id"]
        message.attachments = [{**message.attachments[0], "slack_upload_id": file_id}]
        message.attachments[0].pop("slack_file_id")
        message.slack_ts = None

    mirror.sync(conversation_id)

    assert len(slack.calls_to("files.completeUploadExternal")) == 1
    assert len(thread(db, slack, conversation_id)) == 2  # the entry (found, not reposted) and the file
    assert stored_attachments(db)[0][0]["slack_file_id"] == file_id


def test_a_file_slack_refuses_is_said_in_the_thread(db: Database, slack: SlackStandIn):
    slack.fail_next("files.getUploadURLExternal", "file_type_not_allowed")
    conversation_id = receive_photo(db)

    make_mirror(db, slack, Provider()).sync(conversation_id)

    _, notice = thread(db, slack, conversation_id)
    assert "Slack refused it (file_type_not_allowed)" in str(notice["text"])
    assert stored_attachments(db)[0][0]["slack_error"] == "Slack refused it (file_type_not_allowed)"


def test_a_broken_channel_holds_the_file_an_hour_then_the_thread_goes_on(db: Database, slack: SlackStandIn):
    provider = Provider()
    broken = ChannelBroken("WhatsApp refused the access token: set WHATSAPP_ACCESS_TOKEN")
    provider.failures.extend([broken, broken])
    mirror = make_mirror(db, slack, provider)
    conversation_id = receive_photo(db)
    receive_text(db, "hello?")

    with pytest.raises(ChannelBroken):  # just arrived: a person may fix the token any minute
        mirror.sync(conversation_id)
    with db.transaction() as session:  # …but nobody did for an hour
        photo = session.query(Message).order_by(Message.id).first()
        assert photo is not None
        photo.created_at = utcnow() - timedelta(hours=2)
    mirror.sync(conversation_id)

    _entry, notice, after = thread(db, slack, conversation_id)
    assert "refused the access token" in str(notice["text"]) and "hello?" in str(after["text"])


def test_an_attachment_an_adapter_got_wrong_is_said_not_stuck(db: Database, slack: SlackStandIn):
    provider = Provider()
    conversation_id = receive_photo(db)
    with db.transaction() as session:
        message = session.query(Message).one()
        message.attachments = [{"kind": "image", "size": "big", "caption": 7}]  # no name, no ref
    receive_text(db, "and?")

    make_mirror(db, slack, provider).sync(conversation_id)

    _entry, notice, after = thread(db, slack, conversation_id)
    assert "file could not be shown here: the message names no file" in str(notice["text"])
    assert "and?" in str(after["text"]) and provider.fetched == []
