"""The values that cross between core and the channel adapters.

Adapters parse provider payloads into `Inbound` and `DeliveryUpdate`, and send `Outbound`; core never
sees a provider's wire format, and adapters never see the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from core.models import Channel, DeliveryStatus


@dataclass(frozen=True)
class LeadProfile:
    """What a channel tells us about the person writing."""

    provider_id: str  # WhatsApp wa_id, LinkedIn provider id, email address
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

    channel: Channel
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

    channel: Channel
    provider_message_id: str
    status: DeliveryStatus
    at: datetime
    error: str | None = None


@dataclass(frozen=True)
class Outbound:
    """A message to send to a lead over their channel."""

    message_id: int
    channel: Channel
    channel_account: str
    to: str  # provider_thread_id of the conversation
    text: str


@dataclass(frozen=True)
class SendReceipt:
    provider_message_id: str


class ChannelSender(Protocol):
    """Sends over one channel; raises RetryableDelivery or PermanentDelivery on failure."""

    channel: Channel

    def send(self, message: Outbound) -> SendReceipt: ...
