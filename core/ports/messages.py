"""The values that cross between core and the channel adapters.

Adapters parse provider payloads into `Inbound` and `DeliveryUpdate`, and send `Outbound`; core never
sees a provider's wire format, and adapters never see the database. A channel is named by a short
string (`"whatsapp"`, `"sandbox"`…) that its adapter declares; core stores it and never interprets it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
    text: str = ""
    html: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    reply_to_provider_id: str | None = None  # e.g. the message a reaction reacts to


@dataclass(frozen=True)
class DeliveryUpdate:
    """The provider's word on a message we sent."""

    channel: str
    provider_message_id: str
    status: DeliveryStatus
    at: datetime
    error: str | None = None


@dataclass(frozen=True)
class Parsed:
    """Everything one verified delivery (a webhook body, a mail) says."""

    messages: list[Inbound] = field(default_factory=list)
    updates: list[DeliveryUpdate] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # parts that could not be read, and why


@dataclass(frozen=True)
class OutboundFile:
    """A file a teammate attached to a reply."""

    name: str
    mime_type: str
    url: str  # where the adapter can fetch it (Slack's url_private, with the bot token)


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


PartSent = Callable[[int, str], None]  # (parts sent so far, the provider's id of the last one)


def ignore_part(_parts_sent: int, _provider_message_id: str) -> None:
    """For senders that send a message in one piece."""


@dataclass(frozen=True)
class SendReceipt:
    provider_message_id: str
    # What the provider already knows: most answer "accepted" (sent); the sandbox delivers at once.
    status: DeliveryStatus = DeliveryStatus.SENT
