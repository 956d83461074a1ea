"""How Slack names a lead channel: a word and an icon. A channel not listed shows under its own name
with a generic icon, so a new channel needs nothing here to work."""

from __future__ import annotations

import re

_LABELS = {
    "whatsapp": ("WhatsApp", ":speech_balloon:"),
    "email": ("Email", ":email:"),
    "linkedin": ("LinkedIn", ":briefcase:"),
    "sandbox": ("Sandbox", ":test_tube:"),
}
_GENERIC_ICON = ":incoming_envelope:"
_SLACK_ID = re.compile(r"^[A-Z0-9]{1,32}$")
_SLACK_TS = re.compile(r"^\d{1,12}\.\d{1,8}$")


def channel_name(channel: str) -> str:
    return _LABELS.get(channel, (channel.capitalize(), ""))[0]


def channel_icon(channel: str) -> str:
    return _LABELS.get(channel, ("", _GENERIC_ICON))[1]


def thread_link(slack_channel: str | None, thread_ts: str | None) -> str | None:
    """The thread's permalink, built here rather than asked of Slack once per line."""
    if not (slack_channel and thread_ts and _SLACK_ID.match(slack_channel) and _SLACK_TS.match(thread_ts)):
        return None
    return f"https://slack.com/archives/{slack_channel}/p{thread_ts.replace('.', '')}"
