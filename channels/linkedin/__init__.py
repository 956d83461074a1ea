"""LinkedIn through Unipile as a lead channel: Unipile's webhooks in (messages, account status), messages
and files out through its API.

Public surface: `PLUGIN` (for `app/channels.py`), `LinkedInChannel` (the adapter), `parse_webhook`,
`verify_secret`, `UnipileClient`. Core never sees Unipile's wire format; this package never sees the
database.
"""

from __future__ import annotations

from channels.linkedin.adapter import PATH, SECRET_HEADER, LinkedInChannel, load
from channels.linkedin.inbound import CHANNEL, parse_webhook, verify_secret
from channels.linkedin.outbound import UnipileClient, unipile_error
from core.ports import ChannelPlugin

PLUGIN = ChannelPlugin(name=CHANNEL, load=load)

__all__ = [
    "CHANNEL",
    "PATH",
    "PLUGIN",
    "SECRET_HEADER",
    "LinkedInChannel",
    "UnipileClient",
    "parse_webhook",
    "unipile_error",
    "verify_secret",
]
