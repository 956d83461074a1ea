"""Slack's message markup, both ways.

Lead → Slack: `escape` leaves lead text inert. Slack reads `<…>` as mentions and links (`<!channel>`,
`<@U123>`), so `&`, `<` and `>` — and only those, as Slack documents — become entities.

Slack → lead: `to_plain` turns what a rep typed into what a person outside Slack can read: mentions
become names, links become "label (url)", entities become characters. `*bold*` and `_italic_` are left
as typed; WhatsApp reads them the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(r"<([^<>]*)>")
_LEADING_MENTION = re.compile(r"^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_NOTE_PREFIX = re.compile(r"^\s*note:\s*", re.IGNORECASE)
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    # &amp; last, so "&amp;lt;" (a literal "&lt;" typed by the rep) stays "&lt;".
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mentioned_user_ids(text: str) -> list[str]:
    return list(dict.fromkeys(_USER.findall(text)))


def is_note(text: str) -> bool:
    """A message that starts with an @mention or `note:` is for the team, not the lead."""
    return bool(_LEADING_MENTION.match(text) or _NOTE_PREFIX.match(text))


def strip_note_prefix(text: str) -> str:
    return _NOTE_PREFIX.sub("", text, count=1)


def to_plain(text: str, names: Mapping[str, str]) -> str:
    return unescape(_TOKEN.sub(lambda match: _plain_token(match.group(1), names), text))


def _plain_token(token: str, names: Mapping[str, str]) -> str:
    target, _, label = token.partition("|")
    if target.startswith("@"):
        name = names.get(target[1:]) or label or "someone"
        return "@" + name.lstrip("@")
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!subteam^"):
        return label or "@team"
    if target.startswith("!date^"):
        return label
    if target.startswith("!"):
        return "@" + target[1:]
    if target.startswith("mailto:"):
        return label or target.removeprefix("mailto:")
    if not label or unescape(label) == unescape(target):
        return target
    return f"{label} ({target})"
