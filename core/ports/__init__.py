"""The interfaces adapters implement (`channel`), and the values that cross them (`messages`)."""

from core.ports.channel import (
    Accept,
    ChannelAdapter,
    ChannelOff,
    ChannelPlugin,
    Health,
    Poller,
    Reply,
    Sender,
    Verified,
    Webhook,
    WebhookRequest,
    refuse,
)
from core.ports.messages import (
    DeliveryUpdate,
    Inbound,
    LeadProfile,
    Outbound,
    OutboundFile,
    Parsed,
    SendReceipt,
    Template,
)

__all__ = [
    "Accept",
    "ChannelAdapter",
    "ChannelOff",
    "ChannelPlugin",
    "DeliveryUpdate",
    "Health",
    "Inbound",
    "LeadProfile",
    "Outbound",
    "OutboundFile",
    "Parsed",
    "Poller",
    "Reply",
    "SendReceipt",
    "Sender",
    "Template",
    "Verified",
    "Webhook",
    "WebhookRequest",
    "refuse",
]
