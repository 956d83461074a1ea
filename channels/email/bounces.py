"""Delivery status notifications (RFC 3464): a mail server's report that our mail did not arrive.

A DSN is `multipart/report; report-type=delivery-status` with a `message/delivery-status` part (one
block per recipient: `Action`, `Status`, `Diagnostic-Code`) and the original mail, or its headers,
whose `Message-ID` names the mail of ours it reports on. `failed` becomes FAILED with the server's
reason in words; `delivered` (a DSN we asked nothing of, but some servers send) becomes DELIVERED;
`delayed`, `relayed` and `expanded` say nothing final and are left alone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage, Message

from channels.email.headers import header
from core.models import DeliveryStatus
from core.ports import DeliveryUpdate

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_FAILED, _DELIVERED = "failed", "delivered"


def is_delivery_report(mail: EmailMessage) -> bool:
    return (
        mail.get_content_type() == "multipart/report"
        and str(mail.get_param("report-type", "")).casefold() == "delivery-status"
    )


def delivery_updates(mail: EmailMessage, channel: str) -> list[DeliveryUpdate]:
    original = _original_message_id(mail)
    if original is None:
        return []
    blocks = _status_blocks(mail)
    failed = [block for block in blocks if _field(block, "Action") == _FAILED]
    at = datetime.now(UTC)
    if failed:
        reasons = [_reason(block) for block in failed]
        return [DeliveryUpdate(channel, original, DeliveryStatus.FAILED, at, error="; ".join(reasons))]
    if blocks and all(_field(block, "Action") == _DELIVERED for block in blocks):
        return [DeliveryUpdate(channel, original, DeliveryStatus.DELIVERED, at)]
    return []


def _status_blocks(mail: EmailMessage) -> list[Message]:
    for part in mail.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):  # the per-message block first, then one per recipient
                return [block for block in payload[1:] if isinstance(block, Message)]
    return []


def _original_message_id(mail: EmailMessage) -> str | None:
    for part in mail.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message):
                found = _MESSAGE_ID.findall(header(inner, "Message-ID"))
                if found:
                    return found[0]
        if kind in ("text/rfc822-headers", "message/global-headers"):
            text = part.get_content() if isinstance(part, EmailMessage) else str(part.get_payload())
            match = re.search(r"^message-id:\s*(<[^<>\s]+>)", str(text), re.IGNORECASE | re.MULTILINE)
            if match:
                return match.group(1)
    return None


def _field(block: Message, name: str) -> str:
    return " ".join(header(block, name).split()).casefold()


def _reason(block: Message) -> str:
    """`x@bounce.example: No such mailbox here (5.1.1)` in the server's own words."""
    recipient = header(block, "Final-Recipient") or header(block, "Original-Recipient")
    recipient = recipient.split(";", 1)[-1].strip()
    diagnostic = " ".join(header(block, "Diagnostic-Code").split())
    diagnostic = diagnostic.split(";", 1)[-1].strip() if ";" in diagnostic else diagnostic
    status = header(block, "Status").strip()
    said = diagnostic or "the mail server gave no reason"
    return f"{recipient + ': ' if recipient else ''}{said}{f' ({status})' if status else ''}"
