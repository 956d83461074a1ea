"""Slack's message markup, both ways.

Lead → Slack (`escape`, `escape_clipped`): Slack reads `<…>` in message text as markup — `<!channel>`
pings the whole channel, `<@U123>` pings a teammate, `<https://evil|your bank>` forges a link — and `&`
starts an entity. Lead text is data, so `&`, `<` and `>` become `&amp;`, `&lt;`, `&gt;`. Slack documents
exactly these three; escaping more (quotes, apostrophes) would show up as literal `&#39;` in Slack.
`*bold*` and `_italic_` in lead text stay: they only style, they cannot ping or link.

Slack → lead (`to_plain`): what a rep typed, as a person outside Slack reads it: mentions become names,
links become "label (url)", entities become characters. `*bold*` and `_italic_` are left as typed;
WhatsApp reads them the same way.

Which thread messages are internal notes is `bot.notes`' question.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "escape",
    "escape_clipped",
    "mentioned_user_ids",
    "to_plain",
    "unescape",
]

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_TOKEN = re.compile(r"<([^<>]*)>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def escape(text: str) -> str:
    """Make text inert in Slack mrkdwn: it shows as typed and can never ping anyone or forge a link."""
    # `&` first, or the `&` of a fresh `&lt;` would be escaped again.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_clipped(text: str, limit: int) -> str:
    """`escape(text)`, cut to at most `limit` characters (ending in "…" when cut).

    Cuts the raw text, not the escaped one, so an entity is never split in half (`&am`), and counts
    what Slack counts: the escaped length.
    """
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    room, kept = limit - 1, 0  # one character for the ellipsis
    for index, char in enumerate(text):
        kept += len(_ENTITIES.get(char, char))
        if kept > room:
            return escape(text[:index]) + "…"
    return escaped  # pragma: no cover - unreachable: the whole text fit after all


def unescape(text: str) -> str:
    # `&amp;` last, so `&amp;lt;` (a rep who typed a literal "&lt;") stays "&lt;".
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mentioned_user_ids(text: str) -> list[str]:
    """Slack user ids mentioned in `text`, in order of first appearance, each once."""
    return list(dict.fromkeys(_USER.findall(text)))


def to_plain(text: str, names: Mapping[str, str]) -> str:
    """What a rep typed in Slack, as plain text for the lead.

    `names` maps Slack user ids to display names; a mention of someone not in it falls back to the
    label Slack sent, then to "someone" — never to a raw user id.
    """
    # Markup first, entities after: a link's URL and label are themselves entity-escaped.
    return unescape(_TOKEN.sub(lambda match: _plain_token(match.group(1), names), text))


def _plain_token(token: str, names: Mapping[str, str]) -> str:
    target, _, label = token.partition("|")
    if target.startswith("@"):  # <@U123> or <@U123|bob>
        name = names.get(target[1:]) or label or "someone"
        return "@" + name.lstrip("@")
    if target.startswith("#"):  # <#C123|general>
        return "#" + (label or target[1:])
    if target.startswith("!subteam^"):  # <!subteam^S123|@sales>
        return "@" + (label.lstrip("@") or "team")
    if target.startswith("!date^"):  # <!date^1700000000^{date}|Nov 14> → the fallback Slack shows
        return label
    if target.startswith("!"):  # <!here>, <!channel>, <!everyone>
        return "@" + target[1:]
    for scheme in ("mailto:", "tel:"):
        if target.startswith(scheme):
            address = target.removeprefix(scheme)
            return address if not label or label == address else f"{label} ({address})"
    if not label or label == target:
        return target
    if _is_bare(label, target):
        return label
    return f"{label} ({target})"


def _is_bare(label: str, url: str) -> bool:
    # Slack auto-links a bare "acme.com" as <http://acme.com|acme.com>: the lead should read what the
    # rep typed, not "acme.com (http://acme.com)".
    return label.rstrip("/") == _SCHEME.sub("", url).rstrip("/")
