"""A lead's emoji (Unicode, as WhatsApp sends it) as the short name Slack's reactions take.

The `emoji` package (a well-kept table of Unicode's emoji with their GitHub-style aliases, which are
the names Slack uses) gives the name; skin tones become Slack's `::skin-tone-N` suffix and flags
Slack's `flag-xx`. A name Slack does not know is refused by Slack (`invalid_name`); the mirror then
shows the reaction as a line in the thread instead.
"""

from __future__ import annotations

import re

import emoji

_TONES = {chr(0x1F3FB + n): n + 2 for n in range(5)}  # light … dark: Slack's skin-tone-2 … 6
_INVISIBLE = {"\ufe0f", "\ufe0e"}  # variation selectors: how to draw it, not which emoji
_REGIONAL_A = 0x1F1E6
_NAME = re.compile(r"[a-z0-9_+\-]{1,100}")


def slack_emoji_name(text: str) -> str | None:
    """`👍🏽` → `thumbsup::skin-tone-4`, `🇵🇹` → `flag-pt`; None when it is not one emoji we can name."""
    tone = next((_TONES[c] for c in text if c in _TONES), None)
    base = "".join(c for c in text if c not in _TONES and c not in _INVISIBLE).strip()
    if not base:
        return None
    if len(base) == 2 and all(_REGIONAL_A <= ord(c) < _REGIONAL_A + 26 for c in base):
        return "flag-" + "".join(chr(ord(c) - _REGIONAL_A + ord("a")) for c in base)
    if not emoji.is_emoji(base) and not emoji.is_emoji(base + "\ufe0f"):
        return None
    name = emoji.demojize(base if emoji.is_emoji(base) else base + "\ufe0f", language="alias")
    name = name.removeprefix(":").removesuffix(":").lower()
    if not _NAME.fullmatch(name):
        return None
    return f"{name}::skin-tone-{tone}" if tone else name
