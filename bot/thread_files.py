"""A lead's files, into the conversation's thread: the mirror's file step (bot/mirror.py).

A message's entry comes first (sender, channel, time, "[image] caption"); each of its files follows as a
Slack file shared into the thread, titled with its name, the caption as its comment. Only then does the
mirror record the entry's ts, so the thread keeps its order: entry, its files, the next message.

Per file, in this order, each step outside any database transaction:
1. take a posting token (a file share is a post in the channel);
2. fetch the bytes from the lead's channel (`fetch_file`, injected by app/: bot/ knows no adapters);
3. `files.getUploadURLExternal` → record its file id as `slack_upload_id` → POST the bytes →
   `files.completeUploadExternal` into the thread → record `slack_file_id`.
A retry skips files with `slack_file_id`; for one with only `slack_upload_id` it asks `files.info`
whether Slack shows it in the thread already, and starts over only if not. The one window left for a
duplicate: Slack completed the share but has not yet listed it on the file when we ask.

Failures: the channel's `RetryableDelivery` propagates, and the outbox runs the mirror again later
(Slack work never gives up; the thread waits, in order). `ChannelBroken` (the token expired: a person
must act) waits the same way for BROKEN_WAIT after the message arrived, then gives up on the file so
the lead's later messages are not held back for days. That, a `PermanentDelivery` (media expired, too
large…) or Slack refusing the file puts a visible line in the thread saying which file and why,
recorded as `slack_error` so it is said once; the entry's text is already there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from bot.blocks.labels import channel_name
from bot.mrkdwn import escape, escape_clipped
from core.actions.locks import lock_message
from core.db import Database
from core.errors import ChannelBroken, PermanentDelivery
from core.models import Message, utcnow
from core.ports import MAX_FILE_BYTES, Attachment, FetchedFile

from .slack_client import SlackGateway, SlackRefused

log = logging.getLogger(__name__)

FetchFile = Callable[[str, Mapping[str, str]], FetchedFile]  # (lead channel, Attachment.ref) → bytes
NOT_SHOWN = ":paperclip: The lead's file {name} could not be shown here: {reason}"
COMMENT_LIMIT = 3000
BROKEN_WAIT = timedelta(hours=1)  # how long a file waits for a broken channel before the thread goes on
TITLE_LIMIT = 250


def no_channels(channel: str, _ref: Mapping[str, str]) -> FetchedFile:
    raise PermanentDelivery(f"the {channel} channel is not configured on this server")


@dataclass(frozen=True)
class Where:
    channel: str
    thread_ts: str


def unsettled(message: Message) -> bool:
    """Whether a file of this message still has to be shown in its thread."""
    return any(_pending(attachment) for attachment in message.attachments or [])


class ThreadFiles:
    def __init__(
        self, db: Database, slack: SlackGateway, fetch_file: FetchFile, *, max_bytes: int = MAX_FILE_BYTES
    ) -> None:
        self.db = db
        self.slack = slack
        self.fetch_file = fetch_file
        self.max_bytes = max_bytes

    def settle(self, message: Message, where: Where) -> None:
        """Show each of the message's files in the thread that is not there (or said missing) yet."""
        for index, attachment in enumerate(message.attachments or []):
            if _pending(attachment):
                self._settle(message, index, attachment, where)

    def _settle(self, message: Message, index: int, attachment: Attachment, where: Where) -> None:
        record = partial(self._record, message.id, index)
        earlier = attachment.get("slack_upload_id")
        if earlier and self.slack.file_shared(earlier, where.channel, where.thread_ts):
            record(slack_file_id=earlier)  # the earlier try got it there; only its answer was lost
            return
        self.slack.pace(where.channel)
        try:
            fetched = self._fetch(message.channel, attachment)
        except PermanentDelivery as exc:
            self._say_not_shown(message, attachment, where, exc.reason, record)
            return
        except ChannelBroken as exc:
            if utcnow() - message.created_at < BROKEN_WAIT:
                raise  # a person is fixing it, likely soon: the thread waits, in order
            self._say_not_shown(message, attachment, where, exc.reason, record)
            return
        try:
            upload_url, file_id = self.slack.start_upload(
                _title(attachment, fetched), len(fetched.content), alt_text=_alt_text(attachment)
            )
            record(slack_upload_id=file_id)
            self.slack.send_upload(upload_url, fetched.content)
            self.slack.complete_upload(
                file_id,
                title=_title(attachment, fetched),
                channel=where.channel,
                thread_ts=where.thread_ts,
                comment=_comment(attachment),
            )
        except SlackRefused as refused:
            self._say_not_shown(message, attachment, where, f"Slack refused it ({refused.error})", record)
            return
        record(slack_file_id=file_id)

    def _fetch(self, channel: str, attachment: Attachment) -> FetchedFile:
        size, ref = attachment.get("size"), attachment.get("ref")
        if isinstance(size, int) and size > self.max_bytes:
            raise PermanentDelivery(_too_big(size, self.max_bytes))
        if not isinstance(ref, dict) or not ref:
            raise PermanentDelivery(
                "the message names no file to fetch"
            )  # an adapter's slip: said, not stuck
        fetched = self.fetch_file(channel, ref)
        if len(fetched.content) > self.max_bytes:
            raise PermanentDelivery(_too_big(len(fetched.content), self.max_bytes))
        if not fetched.content:
            raise PermanentDelivery("the file is empty")
        return fetched

    def _say_not_shown(
        self,
        message: Message,
        attachment: Attachment,
        where: Where,
        reason: str,
        record: Callable[..., None],
    ) -> None:
        log.warning("message %s: file not shown in Slack: %s", message.id, reason)
        said = f"{reason} ({channel_name(message.channel)})"
        name = escape_clipped(str(attachment.get("name") or "file"), TITLE_LIMIT)
        text = NOT_SHOWN.format(name=name, reason=escape(said))
        self.slack.post(where.channel, text=text[:COMMENT_LIMIT], thread_ts=where.thread_ts, paced=True)
        record(slack_error=reason)

    def _record(self, message_id: int, index: int, **changes: str) -> None:
        self.db.run(lambda session: _store_attachment(session, message_id, index, changes))


def _pending(attachment: Any) -> bool:
    return isinstance(attachment, dict) and not (
        attachment.get("slack_file_id") or attachment.get("slack_error")
    )


def _title(attachment: Attachment, fetched: FetchedFile) -> str:
    return str(attachment.get("name") or fetched.name or "file")[:TITLE_LIMIT]


def _comment(attachment: Attachment) -> str | None:
    caption = str(attachment.get("caption") or "").strip()
    return escape_clipped(caption, COMMENT_LIMIT) if caption else None


def _alt_text(attachment: Attachment) -> str | None:
    caption = str(attachment.get("caption") or "").strip()
    return caption[:1000] if caption and attachment.get("kind") in {"image", "sticker"} else None


def _too_big(size: int, limit: int) -> str:
    return f"it is {size / 1_048_576:.1f} MB, more than the {limit // 1_048_576} MB Threadline moves"


def _store_attachment(session: Session, message_id: int, index: int, changes: dict[str, str]) -> None:
    message = lock_message(session, message_id)
    attachments = [dict(item) for item in message.attachments]
    attachments[index].update(changes)
    if "slack_file_id" in changes or "slack_error" in changes:
        attachments[index].pop("slack_upload_id", None)
    message.attachments = attachments  # a new list: the JSON column sees the change
