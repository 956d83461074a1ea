"""Making outside text storable: whatever a provider sends is kept, never a reason to fail an insert.

PostgreSQL refuses NUL characters in text and every database refuses what UTF-8 cannot encode (a lone
surrogate); columns have lengths. `clean` replaces the unstorable characters with U+FFFD (a visible
mark), `fit` also cuts to a column's length with "…", and `fit_key` cuts an identifier so that two
different long ids stay different (a hash of the whole id replaces the cut part).
"""

from __future__ import annotations

import hashlib

MARK = "\ufffd"
_KEY_HASH = 16


def clean(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", MARK)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join(MARK if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)
    return text


def fit(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = clean(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit_key(key: str, limit: int) -> str:
    key = clean(key)
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:_KEY_HASH]
    return f"{key[: limit - _KEY_HASH - 1]}…{digest}"
