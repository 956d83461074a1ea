"""The `deliver` outbox handler: send one outbound message over the lead's channel, exactly once.

Sending twice is worse than asking: if a worker died after handing a message to the provider but
before recording the answer, the retry finds the message still `sending` and marks it failed with
"outcome unknown" (the rep sees it and can press Retry) instead of sending it blind a second time.
A message sent in parts records each part as the provider takes it, so whatever retries it (the
outbox, the rep's Retry) sends only the parts still missing.

A channel with a reply window (WhatsApp: 24 hours after the lead last wrote) is told when the lead last
wrote (`Outbound.last_inbound_at`) and decides itself; when it answers `NeedsTemplate`, the message is
failed with the code NEEDS_TEMPLATE, and the thread offers the channel's templates (bot.mirror).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.actions.health import any_broken, do_record_account_health
from core.actions.inbound import apply_early_statuses
from core.actions.locks import lock_message
from core.db import Database
from core.errors import (
    NEEDS_TEMPLATE,
    UNKNOWN_OUTCOME_CODE,
    ChannelBroken,
    Deferred,
    DeliveryError,
    NeedsTemplate,
    PermanentDelivery,
    RetryableDelivery,
)
from core.metrics import OUTBOUND, rate_limited
from core.models import DeliveryStatus, Direction, Message
from core.outbox import Job, JobKind, queue
from core.ports import AccountHealth, NamesMessages, Outbound, Sender, SendReceipt, Template
from core.reply_files import FetchSlackFile, ReplyFiles, no_slack_files, reply_files

log = logging.getLogger(__name__)

HOLD_SECONDS = 60.0  # how long a reply waits on a broken channel before it tries again

UNKNOWN_OUTCOME = (
    "Threadline stopped while sending this message, so it may or may not have reached the lead. "
    "Retry to send it again."
)


class Deliverer:
    def __init__(
        self, db: Database, senders: Mapping[str, Sender], *, slack_files: FetchSlackFile = no_slack_files
    ) -> None:
        self.db = db
        self.senders = senders
        self.slack_files = slack_files

    def __call__(self, job: Job) -> None:
        assert job.message_id is not None, "deliver jobs name their message"
        message_id = job.message_id
        files = self._files(job, message_id)
        if files is None:
            return
        outbound = self.db.run(lambda session: self._start(session, message_id))
        if outbound is None:
            return
        outbound = replace(outbound, files=files)
        channel = outbound.channel
        try:
            receipt = self._send(outbound, message_id)
        except RetryableDelivery as exc:
            if exc.retry_after is not None:
                rate_limited(channel, "retry_after", exc.retry_after)
            if not job.last_attempt:
                self.db.run(lambda session: self._requeue(session, outbound.message_id))
                OUTBOUND.labels(channel, "retry").inc()
                raise
            self._record_failure(
                outbound.message_id, f"{exc.reason} (gave up after {job.attempts} tries)", exc.code
            )
            OUTBOUND.labels(channel, "failed").inc()
        except ChannelBroken as exc:
            # Not this message's fault: it waits (uncounted) while the channel is broken, and each wait
            # ends in one more try, which tells when the channel works again.
            reason = exc.reason
            log.error("the %s channel needs attention: %s", channel, reason)
            self.db.run(lambda session: self._hold(session, outbound, reason))
            OUTBOUND.labels(channel, "held").inc()
            raise Deferred(HOLD_SECONDS, f"the {channel} channel is broken: {reason}") from None
        except NeedsTemplate as exc:
            self._record_failure(outbound.message_id, exc.reason, NEEDS_TEMPLATE)
            OUTBOUND.labels(channel, "needs_template").inc()
        except DeliveryError as exc:
            self._record_failure(outbound.message_id, exc.reason, exc.code)
            OUTBOUND.labels(channel, "failed").inc()
        else:
            self.db.run(lambda session: self._sent(session, outbound.message_id, receipt))
            OUTBOUND.labels(channel, "sent").inc()

    def _files(self, job: Job, message_id: int) -> ReplyFiles | None:
        """The reply's files from Slack (core.reply_files), fetched before the message is marked sending
        and outside any transaction; None when the reply failed for one of them (the reason shown)."""
        with self.db.sessions() as session:
            message = session.get_one(Message, message_id)
            if message.delivery_status != DeliveryStatus.QUEUED or not message.attachments:
                return ()
            attachments = list(message.attachments)
        try:
            return reply_files(attachments, self.slack_files)
        except RetryableDelivery as exc:
            if not job.last_attempt:
                raise  # still queued: the outbox tries again later
            reason = f"{exc.reason} (gave up after {job.attempts} tries)"
        except DeliveryError as exc:
            reason = exc.reason
        self.db.run(lambda session: _fail_queued(session, message_id, reason))
        return None

    def _send(self, outbound: Outbound, message_id: int) -> SendReceipt:
        sender = self.senders.get(outbound.channel)
        if sender is None:
            raise PermanentDelivery(f"The {outbound.channel} channel is not configured on this server.")

        def part_sent(parts_sent: int, provider_message_id: str) -> None:
            self.db.run(lambda session: _record_part(session, message_id, parts_sent, provider_message_id))

        return sender.send(outbound, part_sent)

    def _start(self, session: Session, message_id: int) -> Outbound | None:
        message = lock_message(session, message_id)
        if message.delivery_status == DeliveryStatus.SENDING:
            _fail(session, message, UNKNOWN_OUTCOME, UNKNOWN_OUTCOME_CODE)
            return None
        if message.delivery_status != DeliveryStatus.QUEUED:
            return None  # already sent, failed or handled by a twin of this job
        message.delivery_status = DeliveryStatus.SENDING
        sender = self.senders.get(message.channel)
        if isinstance(sender, NamesMessages) and message.provider_message_id is None:
            message.provider_message_id = sender.new_message_id()  # stored before the send begins
        threading = reply_threading(session, message)
        conversation = message.conversation
        template = message.template
        return Outbound(
            message_id=message.id,
            channel=message.channel,
            channel_account=conversation.channel_account,
            to=conversation.provider_thread_id,
            text=message.text,
            template=None if template is None else Template(template["name"], template["language"]),
            parts_sent=message.parts_sent,
            subject=threading.subject,
            in_reply_to=threading.in_reply_to,
            references=threading.references,
            provider_message_id=message.provider_message_id if isinstance(sender, NamesMessages) else None,
            last_inbound_at=conversation.last_inbound_at,
        )

    @staticmethod
    def _requeue(session: Session, message_id: int) -> None:
        # The provider said it did not take the message (network refused, 5xx, rate limit): safe to retry.
        message = lock_message(session, message_id)
        message.delivery_status = DeliveryStatus.QUEUED

    @staticmethod
    def _hold(session: Session, outbound: Outbound, reason: str) -> None:
        broken = AccountHealth(outbound.channel, outbound.channel_account, ok=False, reason=reason)
        do_record_account_health(session, broken)
        lock_message(session, outbound.message_id).delivery_status = DeliveryStatus.QUEUED

    @staticmethod
    def _sent(session: Session, message_id: int, receipt: SendReceipt) -> None:
        message = lock_message(session, message_id)
        if any_broken(session, message.channel):  # a send went through: the channel works again
            working = AccountHealth(message.channel, message.conversation.channel_account, ok=True)
            do_record_account_health(session, working)
        message.provider_message_id = receipt.provider_message_id
        message.delivery_status = receipt.status
        message.delivery_error = message.delivery_error_code = None
        apply_early_statuses(session, message)
        queue(session, JobKind.MIRROR, message.conversation_id, message_id=message.id)

    def _record_failure(self, message_id: int, reason: str, code: str | None = None) -> None:
        def fail(session: Session) -> None:
            _fail(session, lock_message(session, message_id), reason, code)

        self.db.run(fail)


def _fail(session: Session, message: Message, reason: str, code: str | None = None) -> None:
    log.warning("message %s not delivered: %s", message.id, reason)
    message.delivery_status = DeliveryStatus.FAILED
    message.delivery_error = reason
    message.delivery_error_code = None if code is None else code[:64]
    queue(session, JobKind.MIRROR, message.conversation_id, message_id=message.id)


def _fail_queued(session: Session, message_id: int, reason: str) -> None:
    message = lock_message(session, message_id)
    if message.delivery_status == DeliveryStatus.QUEUED:  # not taken meanwhile by a twin of this job
        _fail(session, message, reason)


def _record_part(session: Session, message_id: int, parts_sent: int, _provider_message_id: str) -> None:
    # Only the progress: the message takes a provider id (and so statuses) once the whole send is done.
    message = lock_message(session, message_id)
    message.parts_sent = max(message.parts_sent, parts_sent)


MAX_REFERENCES = 50


@dataclass(frozen=True)
class ReplyThreading:
    subject: str | None
    in_reply_to: str | None
    references: tuple[str, ...]


def reply_threading(session: Session, message: Message) -> ReplyThreading:
    """Where a reply belongs in the lead's own thread, for channels that thread by headers (email):
    the provider ids of the conversation's messages before it (oldest first, the latest MAX_REFERENCES),
    the lead's latest one (what it answers), and the subject of the lead's latest message having one."""
    newest_first = session.execute(
        select(Message.direction, Message.provider_message_id, Message.subject)
        .where(
            Message.conversation_id == message.conversation_id,
            Message.id < message.id,
            Message.direction != Direction.NOTE,
            Message.provider_message_id.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(MAX_REFERENCES)
    ).all()
    rows = list(reversed(newest_first))
    inbound = [row for row in rows if row.direction == Direction.INBOUND]
    return ReplyThreading(
        subject=next((row.subject for row in reversed(inbound) if row.subject), None),
        in_reply_to=inbound[-1].provider_message_id if inbound else None,
        references=tuple(row.provider_message_id for row in rows),
    )
