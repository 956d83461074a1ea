"""Email as a lead channel: an IMAP mailbox read as mail arrives (IDLE), replies sent over SMTP.

Public surface: `PLUGIN` (for `app/channels.py`), `EmailChannel` (the adapter), `parse_mail`,
`build_mail`, `EmailSender`, `ImapPoller`. Core never sees a mail's headers; this package never sees
the database.
"""

from __future__ import annotations

from channels.email.adapter import EmailChannel, load
from channels.email.inbound import CHANNEL, parse_mail
from channels.email.outbound import EmailSender, build_mail
from channels.email.poller import ImapPoller
from core.ports import ChannelPlugin

PLUGIN = ChannelPlugin(name=CHANNEL, load=load)

__all__ = ["CHANNEL", "PLUGIN", "EmailChannel", "EmailSender", "ImapPoller", "build_mail", "parse_mail"]
