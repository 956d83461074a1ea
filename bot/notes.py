"""Internal notes: which thread messages stay with the team and never reach the lead.

A thread message is a note if, after any leading whitespace or invisible characters, it starts with a
mention (`<@U…>`, `<!subteam^…>`, `<!here>`, `<!channel>`, `<!everyone>`, or a typed `@name`) or with
the word `note`/`notes` followed by `:` or `-` (or a look-alike colon or dash), in any case and any Slack
formatting (`*Note:*`, `_note_ -`). The message's rich-text blocks are read too, and either one saying
"note" is enough.

Sending a note to a lead is the worst bug this product can have, while a reply wrongly kept as a note is
visible (🔒) and can simply be typed again; so every doubt resolves to "note".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

__all__ = ["is_note", "strip_note_prefix"]

_FORMAT = "*_~`"
# Styling around a mention or the word never changes who the message is for, so it is skipped.
_MENTION = re.compile(r"[\s*_~`]*(?:<@|<!(?:subteam\^|here|channel|everyone)\b|@\S)", re.IGNORECASE)
_NOTE_PREFIX = re.compile(
    r"(?P<open>[\s*_~`]*)notes?(?P<mid>[\s*_~`]*)[:\uff1a\ufe55\ufe13\-\u2010-\u2015\u2212](?P<close>[*_~`]*)\s*",
    re.IGNORECASE,
)
# Render as nothing, yet are letters or marks rather than format characters (Cf), so name them.
_BLANK_LOOKING = frozenset("\u115f\u1160\u2800\u3164\uffa0")
_MENTION_ELEMENTS = frozenset({"user", "usergroup", "broadcast"})
_MAX_DEPTH = 16  # blocks come from outside: hostile nesting must not exhaust anything
_END = object()


def is_note(text: str, blocks: object = None) -> bool:
    """True if the message is for the team only; `blocks` are Slack's rich-text blocks, if any."""
    return _says_note(text if isinstance(text, str) else "") or _says_note(_blocks_lead(blocks))


def strip_note_prefix(text: str) -> str:
    """The note without its leading `note:` and that prefix's formatting; anything else unchanged.

    A leading mention stays: it says who the note is for.
    """
    visible, origin = _visible(text)
    match = _NOTE_PREFIX.match(visible)
    if match is None:
        return text
    rest = text[origin[match.end()] if match.end() < len(origin) else len(text) :]
    # `*Note: call her*` bolds the whole message: with its opening `*` gone, drop the closing one too.
    opened = "".join(c for c in match["open"] if c in _FORMAT)
    closed = "".join(c for c in match["mid"] + match["close"] if c in _FORMAT)
    dangling = opened[: max(len(opened) - len(closed), 0)][::-1]
    if dangling and rest.rstrip().endswith(dangling):
        rest = rest.rstrip()[: -len(dangling)]
    return rest


def _says_note(text: str) -> bool:
    visible, _ = _visible(text)
    return bool(_MENTION.match(visible) or _NOTE_PREFIX.match(visible))


def _visible(text: str) -> tuple[str, list[int]]:
    """`text` as a reader sees it: invisible characters dropped, compatibility forms (full-width letters,
    colons and `@`) folded; and for each resulting character, the index in `text` it came from."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        # Format characters and lone combining marks draw nothing: a reader would not see them.
        if unicodedata.category(char) in ("Cf", "Mn") or char in _BLANK_LOOKING:
            continue
        folded = unicodedata.normalize("NFKC", char)
        chars.append(folded)
        origin.extend([index] * len(folded))
    return "".join(chars), origin


def _blocks_lead(blocks: object) -> str:
    """The start of the rich-text blocks as text, a leading mention element written as `@mention`."""
    if not isinstance(blocks, list):
        return ""
    lead = ""
    for element in _leaves([b for b in blocks if isinstance(b, dict) and b.get("type") == "rich_text"]):
        kind = element.get("type")
        if kind == "text":
            text = element.get("text")
            lead += text if isinstance(text, str) else ""
            continue
        if kind in _MENTION_ELEMENTS:
            lead += "@mention"
        break  # a link, emoji or channel: whatever follows no longer leads the message
    return lead


def _leaves(nodes: list[object]) -> Iterator[dict[str, object]]:
    """Rich-text elements in reading order, sections, lists and quotes opened."""
    stack: list[Iterator[object]] = [iter(nodes)]
    while stack:
        node = next(stack[-1], _END)
        if node is _END:
            stack.pop()
        elif isinstance(node, dict):
            children = node.get("elements")
            if isinstance(children, list):
                if len(stack) < _MAX_DEPTH:
                    stack.append(iter(children))
            else:
                yield node
