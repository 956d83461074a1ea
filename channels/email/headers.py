"""Reading a mail's headers without tripping on the odd ones.

With `email.policy.default` a header is parsed when it is read, and the standard library's parser
raises on some malformed values (`To: <` ends in an IndexError): a mail is never refused for that.
Such a header is read as its raw text instead.

`POLICY` bounds what parsing a header may cost: the standard library's parser is quadratic in a
header's length (a Subject of a few hundred kB of encoded words took 25 s and 5.8 GB; an address list
of 32 kB takes a second), so a header is parsed from its first MAX_HEADER_CHARS characters only —
more than any real one needs but References, whose first id (the thread's root) is the one read; the
headers that shape the MIME tree (Content-Type, -Disposition, -Transfer-Encoding), read several times
per part, from their first MAX_STRUCTURE_CHARS; and each distinct value is parsed once. `headers`
reads at most MAX_HEADER_VALUES values of one name (a mail may repeat a header thousands of times).
"""

from __future__ import annotations

from email.message import Message
from email.policy import EmailPolicy
from functools import lru_cache

MAX_HEADER_CHARS = 4_000
MAX_STRUCTURE_CHARS = 2_000  # a filename of 255 non-ASCII characters, RFC 2231-encoded, fits
MAX_HEADER_VALUES = 20
_STRUCTURE = {"content-type", "content-disposition", "content-transfer-encoding"}


class _BoundedPolicy(EmailPolicy):
    def header_fetch_parse(self, name: str, value: str) -> object:  # type: ignore[override]
        if hasattr(value, "name"):  # a header object a program set, not raw text
            return super().header_fetch_parse(name, value)
        limit = MAX_STRUCTURE_CHARS if name.casefold() in _STRUCTURE else MAX_HEADER_CHARS
        return _parsed(self, name, value[:limit])


@lru_cache(maxsize=1024)
def _parsed(policy: EmailPolicy, name: str, value: str) -> object:
    return EmailPolicy.header_fetch_parse(policy, name, value)  # header objects are immutable: shared


POLICY = _BoundedPolicy()  # email.policy.default, bounded


def headers(mail: Message, name: str) -> list[str]:
    """Every value of the header `name` as text, in order ([] when absent)."""
    wanted = name.casefold()
    raw = [value for key, value in mail.raw_items() if key.casefold() == wanted][:MAX_HEADER_VALUES]
    try:
        return [str(mail.policy.header_fetch_parse(name, value)) for value in raw]
    except Exception:  # the parser's own failure on a malformed value: its raw text
        return [" ".join(str(value)[:MAX_HEADER_CHARS].split()) for value in raw]


def header(mail: Message, name: str) -> str:
    """The header's first value as text, "" when absent."""
    found = headers(mail, name)
    return found[0] if found else ""
