"""How Slack names a lead channel: a word and an icon. A channel not listed shows under its own name
with a generic icon, so a new channel needs nothing here to work."""

from __future__ import annotations

_LABELS = {
    "whatsapp": ("WhatsApp", ":speech_balloon:"),
    "email": ("Email", ":email:"),
    "linkedin": ("LinkedIn", ":briefcase:"),
    "sandbox": ("Sandbox", ":test_tube:"),
}
_GENERIC_ICON = ":incoming_envelope:"


def channel_name(channel: str) -> str:
    return _LABELS.get(channel, (channel.capitalize(), ""))[0]


def channel_icon(channel: str) -> str:
    return _LABELS.get(channel, ("", _GENERIC_ICON))[1]
