"""WhatsApp Cloud API as a lead channel: Meta's signed webhooks in, text out through the Graph API.

Public surface: `PLUGIN` (for `app/channels.py`), `WhatsAppChannel` (the adapter), `parse_webhook`,
`verify_signature`, `WhatsAppSender`. Core never sees Meta's wire format; this package never sees the
database.
"""

from __future__ import annotations

from channels.whatsapp.adapter import CHANNEL, WhatsAppChannel, load
from channels.whatsapp.inbound import parse_webhook, verify_signature
from channels.whatsapp.outbound import WhatsAppSender, split_text
from core.ports import ChannelPlugin

PLUGIN = ChannelPlugin(name=CHANNEL, load=load)

__all__ = [
    "CHANNEL",
    "PLUGIN",
    "WhatsAppChannel",
    "WhatsAppSender",
    "parse_webhook",
    "split_text",
    "verify_signature",
]
