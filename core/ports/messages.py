"""The values that cross between core and the channel adapters.

Adapters parse provider payloads into `Inbound` and `DeliveryUpdate`, and send `Outbound`; core never
sees a provider's wire format, and adapters never see the database. A channel is named by a short
string (`"whatsapp"`, `"sandbox"`…) that its adapter declares; core stores it and never interprets it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Required, TypedDict

from core.models import DeliveryStatus


@dataclass(frozen=True)
class LeadProfile:
    """What a channel tells us about the person writing."""

    provider_id: str  # this channel's id for the person (WhatsApp wa_id, LinkedIn provider id, address)
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    title: str | None = None
    profile_url: str | None = None
    avatar_url: str | None = None


class Attachment(TypedDict, total=False):
    """A file in a message, as stored in `message.attachments` (JSON).

    Inbound: the adapter names the file and gives `ref`, its own handle for `fetch_file` (a media id, a
    mailbox UID and MIME part…); the bytes are fetched only when the mirror uploads the file into the
    thread, and `slack_file_id` records that it did (so a retry never uploads twice). Outbound: a
    teammate's file shared in the thread, `ref` holding Slack's file id.
    """

    kind: Required[str]  # image, video, audio, voice, document, sticker, file
    name: Required[str]
    mime_type: Required[str]
    ref: Required[dict[str, str]]
    size: int  # bytes, when the provider says
    caption: str
    slack_file_id: str
    # The mirror's progress: the id Slack gave an upload not yet known to be shared into the thread
    # (checked with files.info before uploading again), and why the file could not be shown, once a
    # notice saying so is in the thread (never tried again).
    slack_upload_id: str
    slack_error: str


# The largest file Threadline moves between a channel and Slack, either way (Slack takes 1 GB, WhatsApp
# media goes up to 100 MB). A file is held in memory whole while it moves: this bounds that memory.
MAX_FILE_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class FetchedFile:
    """A file's bytes, fetched from a provider (`ChannelAdapter.fetch_file`) or from Slack."""

    name: str
    mime_type: str
    content: bytes


@dataclass(frozen=True)
class Inbound:
    """One message a lead sent us."""

    channel: str
    channel_account: str  # which of our numbers / mailboxes / accounts received it
    provider_thread_id: str  # the lead's conversation on that account
    provider_message_id: str  # the provider's id: the dedupe key
    sender: LeadProfile
    sent_at: datetime
    kind: str = "text"  # text, image, audio, video, document, sticker, reaction, location, contacts…
    text: str = ""  # for a reaction: the emoji itself, "" when the lead took it back
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    reply_to_provider_id: str | None = None  # e.g. the message a reaction reacts to
    # The campaign the message came through (a click-to-WhatsApp ad, an email plus-tag): a new
    # conversation takes it, and so does a lead who has none yet.
    campaign: str | None = None
    # Written by our own account on the provider's side (a teammate typing in the provider's app), not
    # by the lead: kept as our outbound message, never sent again, never the lead answering. `sender`
    # is still the lead (the other party of the conversation), as far as the provider says.
    from_us: bool = False

    # Email's subject line: kept with the message, so a reply says "Re: …" and the thread shows it.
    subject: str | None = None
    # The whole message when `text` shows only part of it (an email without its quoted history and
    # signature): kept with the message, a click away in Slack.
    full_text: str | None = None
    # Sent by a machine on the lead's behalf (an out-of-office reply): shown in the thread, but not the
    # lead answering, so it reopens nothing, counts as nothing unread and starts no wait.
    automatic: bool = False


@dataclass(frozen=True)
class DeliveryUpdate:
    """The provider's word on a message we sent."""

    channel: str
    provider_message_id: str
    status: DeliveryStatus
    at: datetime
    error: str | None = None
    # Failed because the lead's reply window had closed (WhatsApp's 131047): the thread offers templates.
    needs_template: bool = False


@dataclass(frozen=True)
class AccountHealth:
    """The provider's word on one of our accounts (LinkedIn's account status webhook…)."""

    channel: str
    account: str
    ok: bool
    reason: str | None = None  # why it is broken, in words a teammate can act on


@dataclass(frozen=True)
class Parsed:
    """Everything one verified delivery (a webhook body, a mail) says."""

    messages: list[Inbound] = field(default_factory=list)
    updates: list[DeliveryUpdate] = field(default_factory=list)
    health: list[AccountHealth] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # parts that could not be read, and why


@dataclass(frozen=True)
class OutboundFile:
    """A file a teammate attached to a reply, its bytes already fetched from Slack by core's
    deliverer: adapters never talk to Slack."""

    name: str
    mime_type: str
    content: bytes


@dataclass(frozen=True)
class Template:
    """A pre-approved message (WhatsApp's way to write after the 24-hour window)."""

    name: str
    language: str


@dataclass(frozen=True)
class Outbound:
    """A message to send to a lead over their channel: text, files, or a template."""

    message_id: int
    channel: str
    channel_account: str
    to: str  # provider_thread_id of the conversation
    text: str
    files: tuple[OutboundFile, ...] = ()
    template: Template | None = None
    parts_sent: int = 0  # of a message the channel sends in parts, those that already reached the provider
    # When the lead last wrote in this conversation: a channel with a reply window (WhatsApp's 24 hours)
    # refuses free text after it with NeedsTemplate, before asking the provider.
    last_inbound_at: datetime | None = None
    # Threading, for channels that thread by headers (email), filled by core from the conversation: the
    # subject of the lead's latest message that has one, the provider id of the lead's latest message
    # (what this answers), and the provider ids of the conversation's earlier messages, oldest first.
    subject: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    # The id this message goes out under when its channel names messages itself (NamesMessages): core
    # stored it with the message before the send began, and it is the same on every try.
    provider_message_id: str | None = None


PartSent = Callable[[int, str], None]  # (parts sent so far, the provider's id of the last one)


def ignore_part(_parts_sent: int, _provider_message_id: str) -> None:
    """For senders that send a message in one piece."""


@dataclass(frozen=True)
class SendReceipt:
    provider_message_id: str
    # What the provider already knows: most answer "accepted" (sent); the sandbox delivers at once.
    status: DeliveryStatus = DeliveryStatus.SENT
