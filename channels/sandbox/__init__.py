"""The sandbox lead channel: try Threadline with nothing but the Slack app.

`threadline simulate "Jane Doe <jane@example.com>" "Hi!"` posts a signed message to this server's
`/webhooks/sandbox`, which takes the same path as any lead's message (verify → parse → store → mirror).
A reply to a sandbox lead is printed on the server's standard output, logged, and shows as delivered.

The webhook is signed with a key derived from `SLACK_SIGNING_SECRET`, so only someone holding the
server's secrets can write as a lead. `THREADLINE_SANDBOX=off` turns the channel off.
"""

from __future__ import annotations

from channels.sandbox.adapter import CHANNEL, PATH, SandboxChannel, load
from channels.sandbox.client import Contact, parse_contact, signed_message
from core.ports import ChannelPlugin

PLUGIN = ChannelPlugin(name=CHANNEL, load=load)

__all__ = ["CHANNEL", "PATH", "PLUGIN", "Contact", "SandboxChannel", "parse_contact", "signed_message"]
