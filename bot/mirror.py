"""The mirror: keeps a conversation's Slack thread in step with the database.

`Mirror.__call__(job)` is the `mirror` outbox handler. It is idempotent and ordered; the outbox runs
one mirror per conversation at a time (its lane). It
1. posts the card if the conversation has no thread yet (exactly one thread per conversation, ever),
2. updates the card when what it shows has changed,
3. posts, in order, every message that belongs in the thread and has no Slack ts yet, each followed
   by its files (bot/thread_files.py; the ts is recorded once they are there, so order holds),
4. shows each sent message's delivery status on its Slack message (a reaction; a notice with Retry on
   failure, the channel's templates when its reply window is closed) and marks internal notes as such.
A lead's reaction shows on the entry it reacts to, a reply quotes what it answers (bot/references.py).
Running it twice does nothing the second time. Slack calls happen outside any database transaction;
the transactions around them only record what Slack answered.

It never sleeps: when Slack's pace allows no post yet, it stops where it is (order kept) and the outbox
brings it back then. When Slack refuses us in a way a person must fix (the app removed from the
channel, the token revoked), the connection is marked broken — said once in the log, shown by
`threadline check` — and the work waits, checking again every BROKEN_RECHECK, until it goes through.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.blocks.card import Block, build_card, card_fingerprint
from bot.blocks.thread import build_delivery_failure, build_thread_entry, delivery_reaction
from core.actions.health import any_broken, do_mark_broken, do_mark_healthy
from core.actions.leads import refresh_other_cards
from core.actions.locks import lock_conversation, lock_message
from core.db import Database
from core.errors import Deferred
from core.models import Conversation, DeliveryStatus, Direction, Message, utcnow
from core.outbox import Job
from core.ports import Template
from core.queries.lead import other_threads
from core.routing import Routes

from .references import REACTION, LeadReactions, is_lead_reaction, quote_for
from .slack_client import WORKSPACE, SlackBroken, SlackGateway, SlackRefused
from .thread_files import FetchFile, ThreadFiles, Where, no_channels, unsettled

log = logging.getLogger(__name__)

CARD_EVENT = "threadline_card"
MESSAGE_EVENT = "threadline_message"
NOTE_REACTION = "lock"  # tells the rep at a glance: stored as an internal note, not sent
NOTE_SHOWN = "note"
SLACK = "slack"  # the channel_account rows that say whether Slack takes our calls
BROKEN_RECHECK = 30.0  # seconds between tries while the Slack connection is broken
UNPOSTABLE = "A message here could not be shown in Slack (Slack said: {error}); Threadline keeps it."
BACKLOG = 3  # a conversation with more entries than this waiting is a backlog: it yields to others


@dataclass(frozen=True)
class Thread:
    channel: str
    ts: str


class Mirror:
    def __init__(
        self,
        db: Database,
        slack: SlackGateway,
        *,
        routes: Routes,
        ai_available: bool,
        fetch_file: FetchFile = no_channels,
        templates: Mapping[str, Sequence[Template]] | None = None,
    ) -> None:
        self.db = db
        self.slack = slack
        self.routes = routes
        self.ai_available = ai_available
        self.files = ThreadFiles(db, slack, fetch_file)
        self.reactions = LeadReactions(db, slack)
        # By lead channel: the templates a closed reply window offers (core.ports.OffersTemplates).
        self.templates = templates or {}

    def __call__(self, job: Job) -> None:
        assert job.conversation_id is not None, "mirror jobs name their conversation"
        self.sync(job.conversation_id)

    def sync(self, conversation_id: int) -> None:
        answered = self.slack.answered()
        try:
            thread = self._ensure_thread(conversation_id)
            self._refresh_card(conversation_id, thread)
            try:
                self._post_new_messages(conversation_id, thread)
            finally:  # statuses of what is posted show even when Slack's pace stops the posting
                self._show_delivery(conversation_id, thread)
        except SlackBroken as broken:
            mark = partial(do_mark_broken, channel=SLACK, account=broken.where, reason=broken.error)
            if self.db.run(mark):
                log.error(
                    "Slack connection broken (%s): %s; mirroring waits and resumes by itself once fixed",
                    broken.where,
                    _advice(broken.error),
                )
            raise Deferred(BROKEN_RECHECK, f"Slack connection broken: {broken.error}") from None
        if self.slack.answered() > answered:  # only a call Slack took proves the connection works
            self._healed(thread)

    def _healed(self, thread: Thread) -> None:
        with self.db.sessions() as session:
            if not any_broken(session, SLACK):
                return
        healed = self.db.run(lambda session: do_mark_healthy(session, SLACK, [thread.channel, WORKSPACE]))
        for where in healed:
            log.info("Slack connection works again (%s); mirroring resumed", where)

    # --- 1. the card ---------------------------------------------------------------------------------

    def _ensure_thread(self, conversation_id: int) -> Thread:
        with self.db.sessions() as session:
            conversation = session.get_one(Conversation, conversation_id)
            if conversation.slack_channel and conversation.slack_thread_ts:
                return Thread(conversation.slack_channel, conversation.slack_thread_ts)
            channel = self._route(conversation)
            text, blocks = self._card(session, conversation)
            interrupted = conversation.slack_card_posting_at is not None

        ts = None
        if interrupted:  # an earlier post may have landed before its worker died
            ts = self.slack.find_posted(
                channel, event_type=CARD_EVENT, key="conversation_id", value=conversation_id
            )
        if ts is None:
            self.slack.pace(channel, urgent=True)
            self.db.run(lambda session: _mark_card_posting(session, conversation_id))
            ts = self.slack.post(
                channel,
                text=text,
                blocks=blocks,
                metadata={"event_type": CARD_EVENT, "event_payload": {"conversation_id": conversation_id}},
                paced=True,
            )
        fingerprint = card_fingerprint(text, blocks)
        self.db.run(lambda session: _store_thread(session, conversation_id, channel, ts, fingerprint))
        return Thread(channel, ts)

    def _card(self, session: Session, conversation: Conversation) -> tuple[str, list[Block]]:
        elsewhere = other_threads(session, conversation)
        return build_card(conversation, ai_available=self.ai_available, elsewhere=elsewhere)

    def _route(self, conversation: Conversation) -> str:
        """Decided once, when the card is first posted: a thread cannot move between channels."""
        campaign = conversation.campaign.name if conversation.campaign is not None else None
        return self.routes.channel_for(campaign=campaign, lead_channel=conversation.channel)

    # --- 2. messages ---------------------------------------------------------------------------------

    def _post_new_messages(self, conversation_id: int, thread: Thread) -> None:
        with self.db.sessions() as session:
            lead_name = _lead_name(session.get_one(Conversation, conversation_id))
            pending = list(
                session.scalars(
                    select(Message)
                    .where(
                        Message.conversation_id == conversation_id,
                        Message.slack_ts.is_(None),
                        Message.direction != Direction.NOTE,
                        or_(Message.kind != REACTION, Message.slack_status_shown.is_(None)),
                    )
                    .order_by(Message.id)
                )
            )
        for position, message in enumerate(pending):
            if is_lead_reaction(message) and self.reactions.show(message):
                continue  # shown on the entry it reacts to, not as an entry of its own
            self._post_message(message, lead_name, thread, urgent=len(pending) - position <= BACKLOG)

    def _post_message(self, message: Message, lead_name: str, thread: Thread, *, urgent: bool) -> None:
        ts = None
        if message.slack_posting_at is not None:
            ts = self.slack.find_posted(
                thread.channel,
                event_type=MESSAGE_EVENT,
                key="message_id",
                value=message.id,
                thread_ts=thread.ts,
            )
        if ts is None:
            self.slack.pace(thread.channel, urgent=urgent)
            self.db.run(lambda session: _mark_message_posting(session, message.id))
            quote = None
            if message.reply_to_provider_id is not None:  # a reply (or a reaction shown as a line)
                with self.db.sessions() as session:
                    quote = quote_for(session, message, lead_name)
            text, blocks = build_thread_entry(message, lead_name, quote)
            metadata = {"event_type": MESSAGE_EVENT, "event_payload": {"message_id": message.id}}
            try:
                ts = self.slack.post(
                    thread.channel,
                    text=text,
                    blocks=blocks,
                    thread_ts=thread.ts,
                    metadata=metadata,
                    paced=True,
                )
            except SlackRefused as refused:
                # Slack will never take this entry as it is: a notice holds its place, so the thread
                # goes on in order instead of stopping here for good.
                log.error(
                    "message %s could not be posted to Slack (%s); a notice stands in", message.id, refused
                )
                notice = UNPOSTABLE.format(error=refused.error)
                ts = self.slack.post(
                    thread.channel, text=notice, thread_ts=thread.ts, metadata=metadata, paced=True
                )
        if unsettled(message):  # its files follow the entry before anything else in the thread
            self.files.settle(message, Where(thread.channel, thread.ts))
        self.db.run(lambda session: _store_message_ts(session, message.id, thread.channel, ts))

    # --- 3. the card's state -------------------------------------------------------------------------

    def _refresh_card(self, conversation_id: int, thread: Thread) -> None:
        with self.db.sessions() as session:
            conversation = session.get_one(Conversation, conversation_id)
            text, blocks = self._card(session, conversation)
            fingerprint = card_fingerprint(text, blocks)
            if fingerprint == conversation.slack_card_hash:
                return
        self.slack.update(thread.channel, thread.ts, text=text, blocks=blocks)
        self.db.run(lambda session: _store_card_hash(session, conversation_id, fingerprint))

    # --- 4. what became of each message --------------------------------------------------------------

    def _show_delivery(self, conversation_id: int, thread: Thread) -> None:
        with self.db.sessions() as session:
            messages = list(
                session.scalars(
                    select(Message)
                    .where(Message.conversation_id == conversation_id, Message.slack_ts.is_not(None))
                    .where(Message.direction.in_([Direction.OUTBOUND, Direction.NOTE]))
                    .where(Message.deleted_at.is_(None))  # gone from Slack: nothing to mark
                    .order_by(Message.id)
                )
            )
        for message in messages:
            shown = message.slack_status_shown
            if message.direction == Direction.NOTE:
                if shown != NOTE_SHOWN:
                    self.slack.react(
                        message.slack_channel or thread.channel, message.slack_ts or "", NOTE_REACTION
                    )
                    self.db.run(partial(_store_shown, message_id=message.id, shown=NOTE_SHOWN))
                continue
            status = message.delivery_status
            if status is None or shown == status.value:
                continue
            self._show_status(message, thread, status)

    def _show_status(self, message: Message, thread: Thread, status: DeliveryStatus) -> None:
        channel, ts = message.slack_channel or thread.channel, message.slack_ts or ""
        previous = DeliveryStatus(message.slack_status_shown) if message.slack_status_shown else None
        old_reaction, new_reaction = delivery_reaction(previous), delivery_reaction(status)
        if old_reaction and old_reaction != new_reaction:
            self.slack.unreact(channel, ts, old_reaction)
        if new_reaction:
            self.slack.react(channel, ts, new_reaction)
        if status == DeliveryStatus.FAILED:
            text, blocks = build_delivery_failure(
                message, message.delivery_error or "unknown reason", self.templates.get(message.channel, ())
            )
            self.slack.post(thread.channel, text=text, blocks=blocks, thread_ts=thread.ts)
        self.db.run(lambda session: _store_shown(session, message.id, status.value))


def _advice(error: str) -> str:
    if error in {"not_in_channel", "channel_not_found"}:
        return f"{error}: invite the app to the channel (/invite @Threadline) or fix SLACK_CHANNEL"
    if error == "is_archived":
        return "the channel is archived: unarchive it or route conversations to another channel"
    if error == "missing_scope":
        return "missing_scope: add the scopes in slack-manifest.yml to the app and reinstall it"
    return f"{error}: the bot token was refused; install the app again and set SLACK_BOT_TOKEN"


def _lead_name(conversation: Conversation) -> str:
    lead = conversation.lead
    return lead.name or lead.phone or lead.email or "Lead"


def _mark_card_posting(session: Session, conversation_id: int) -> None:
    lock_conversation(session, conversation_id).slack_card_posting_at = utcnow()


def _store_thread(session: Session, conversation_id: int, channel: str, ts: str, fingerprint: str) -> None:
    conversation = lock_conversation(session, conversation_id)
    conversation.slack_channel = channel
    conversation.slack_thread_ts = ts
    conversation.slack_card_hash = fingerprint
    refresh_other_cards(session, conversation)  # their cards link to this new thread


def _store_card_hash(session: Session, conversation_id: int, fingerprint: str) -> None:
    lock_conversation(session, conversation_id).slack_card_hash = fingerprint


def _mark_message_posting(session: Session, message_id: int) -> None:
    lock_message(session, message_id).slack_posting_at = utcnow()


def _store_message_ts(session: Session, message_id: int, channel: str, ts: str) -> None:
    message = lock_message(session, message_id)
    message.slack_channel = channel
    message.slack_ts = ts


def _store_shown(session: Session, message_id: int, shown: str) -> None:
    lock_message(session, message_id).slack_status_shown = shown
