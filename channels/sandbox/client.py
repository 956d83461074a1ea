"""What `threadline simulate` sends: a lead's message, signed as the sandbox webhook expects."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from dataclasses import dataclass

SIGNATURE_HEADER = "X-Threadline-Signature"
_NAMED = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<\s*(?P<address>[^<>]+?)\s*>\s*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s().-]{6,20}$")


@dataclass(frozen=True)
class Contact:
    name: str | None
    address: str  # a case-folded email address, or a phone number as +digits

    @property
    def is_email(self) -> bool:
        return "@" in self.address


def parse_contact(text: str) -> Contact:
    """`"Jane Doe <jane@example.com>"`, `"Jo <+351 912 345 678>"`, or a bare address or number."""
    named = _NAMED.match(text)
    name, address = (named["name"] or None, named["address"]) if named else (None, text.strip())
    if _EMAIL.match(address):
        return Contact(name, address.casefold())
    if _PHONE.match(address) and sum(c.isdigit() for c in address) >= 6:
        return Contact(name, "+" + "".join(c for c in address if c.isdigit()))
    raise ValueError(
        f'give the lead as "Name <email or phone>", e.g. "Jane Doe <jane@example.com>" (got {text!r})'
    )


def sandbox_key(signing_secret: str) -> bytes:
    """The sandbox's own key, derived so that it never equals the Slack signing secret itself."""
    return hmac.new(signing_secret.encode(), b"threadline-sandbox", hashlib.sha256).digest()


def sign(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def signed_message(contact: Contact, text: str, *, signing_secret: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one simulated lead message. Each call is a new message (a new id)."""
    body = json.dumps(
        {
            "id": f"sandbox-{uuid.uuid4().hex}",
            "from": {"name": contact.name, "address": contact.address},
            "text": text,
            "sent_at": int(time.time()),
        }
    ).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(sandbox_key(signing_secret), body)}
    return body, headers
