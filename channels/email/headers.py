"""Reading a mail's headers without tripping on the odd ones.

With `email.policy.default` a header is parsed when it is read, and the standard library's parser
raises on some malformed values (`To: <` ends in an IndexError): a mail is never refused for that.
Such a header is read as its raw text instead.
"""

from __future__ import annotations

from email.message import Message


def headers(mail: Message, name: str) -> list[str]:
    """Every value of the header `name` as text, in order ([] when absent)."""
    try:
        return [str(value) for value in mail.get_all(name, [])]
    except Exception:  # the parser's own failure on a malformed value: its raw text
        wanted = name.casefold()
        return [" ".join(str(value).split()) for key, value in mail.raw_items() if key.casefold() == wanted]


def header(mail: Message, name: str) -> str:
    """The header's first value as text, "" when absent."""
    found = headers(mail, name)
    return found[0] if found else ""
