"""Meta's webhooks: the signature over the raw body, the handshake, and the payload into core's values.

Parsing is strict about types: a `null` or an object where Meta sends a string is a malformed delivery
(`MalformedDelivery`), never the text "None" in a thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from core.errors import MalformedDelivery
from core.models import DeliveryStatus
from core.ports import Attachment, DeliveryUpdate, Inbound, LeadProfile, Parsed

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "whatsapp"
_STATUSES = {
    s.value: s
    for s in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED)
}
_MEDIA = {"image", "video", "audio", "document", "sticker"}


def verify_signature(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest().encode()
    # Compared as bytes: a header with non-ASCII characters is simply wrong, not an error.
    given = header.removeprefix("sha256=").strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)


_SHAPE_ERRORS = (KeyError, TypeError, AttributeError, ValueError, OverflowError, OSError, RecursionError)


def shape_problem(raw: bytes) -> str | None:
    """What the edge checks before storing a signed body: JSON, and a WhatsApp webhook at all.

    Meta never signs anything else, so such a body is refused (400) rather than kept; everything deeper
    is left to the inbox runner, where a surprise parks the delivery instead of failing the request.
    """
    try:
        payload = json.loads(raw)
    except RecursionError:
        return None  # JSON, but deeper than we read: kept, and parked by the inbox with the reason
    except ValueError as exc:
        return f"body is not JSON: {type(exc).__name__}"
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        return "not a WhatsApp Business Account webhook (object must be whatsapp_business_account)"
    if not isinstance(payload.get("entry"), list):
        return "entry: expected a list"
    return None


def parse_webhook(raw: bytes | Any) -> Parsed:
    """A verified webhook body (bytes, or already-decoded JSON) → the messages and statuses it carries.

    One malformed message or status does not cost the others in the same body: the rest is stored, and
    what could not be read is named in `Parsed.problems` (the inbox parks the delivery with it, so a
    replay after a fix brings the rest in). A body with nothing readable is a `MalformedDelivery`.
    """
    try:
        payload = json.loads(raw) if isinstance(raw, bytes | str) else raw
        return _parse(payload)
    except MalformedDelivery:
        raise
    except _SHAPE_ERRORS as exc:
        raise MalformedDelivery(f"unexpected WhatsApp webhook shape: {type(exc).__name__}: {exc}") from exc


def _parse(payload: Any) -> Parsed:
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise MalformedDelivery(
            "not a WhatsApp Business Account webhook (object must be whatsapp_business_account)"
        )
    parsed = Parsed()
    skipped: list[str] = []
    for entry in _list(payload, "entry"):
        for change in _list(_dict(entry), "changes"):
            change = _dict(change)
            if change.get("field") != "messages":
                continue  # account, template and group updates are not conversations
            value = _dict(change["value"])
            account = _str(_dict(value["metadata"]), "phone_number_id")
            names = {
                _str(contact, "wa_id"): _opt_str(_dict(contact.get("profile") or {}), "name")
                for contact in map(_dict, _list(value, "contacts"))
            }
            for message in _list(value, "messages"):
                read = partial(_inbound_item, account=account, names=names)
                inbound = _each("message", message, read, skipped)
                if inbound is not None:
                    parsed.messages.append(inbound)
            for status in _list(value, "statuses"):
                update = _each("status", status, lambda s: _update(_dict(s)), skipped)
                if update is not None:
                    parsed.updates.append(update)
    if skipped and not parsed.messages and not parsed.updates:
        raise MalformedDelivery("; ".join(skipped[:3]))
    parsed.problems.extend(skipped)
    return parsed


def _each(what: str, item: Any, read: Callable[[Any], T | None], skipped: list[str]) -> T | None:
    try:
        return read(item)
    except (MalformedDelivery, *_SHAPE_ERRORS) as exc:
        ident = item.get("id") if isinstance(item, dict) else None
        reason = f"{what} {str(ident)[:80] if ident else '(no id)'}: {exc}"
        skipped.append(reason)
        return None


def _inbound_item(item: Any, *, account: str, names: dict[str, str | None]) -> Inbound:
    return _inbound(_dict(item), account, names)


def _inbound(message: dict[str, Any], account: str, names: dict[str, str | None]) -> Inbound:
    wa_id = _str(message, "from")
    kind = _str(message, "type")
    text, attachments, reply_to = _describe(kind, message)
    if reply_to is None:
        reply_to = _opt_str(_dict(message.get("context") or {}), "id")
    return Inbound(
        channel=CHANNEL,
        channel_account=account,
        provider_thread_id=wa_id,
        provider_message_id=_str(message, "id"),
        sender=LeadProfile(provider_id=wa_id, name=names.get(wa_id), phone="+" + wa_id),
        sent_at=_time(message["timestamp"]),
        kind=kind,
        text=text,
        attachments=attachments,
        reply_to_provider_id=reply_to,
    )


def _describe(kind: str, message: dict[str, Any]) -> tuple[str, list[Attachment], str | None]:
    """The text a thread shows for any message type: never empty, never silent."""
    raw_body = message.get(kind)
    body = raw_body if isinstance(raw_body, dict) else {}
    if kind == "text":
        return _str(body, "body"), [], None
    if kind in _MEDIA:
        voice = kind == "audio" and body.get("voice") is True
        label = "voice message" if voice else kind
        filename = _opt_str(body, "filename")
        if filename:
            label += f": {filename}"
        caption = _opt_str(body, "caption")
        mime_type = _opt_str(body, "mime_type") or "application/octet-stream"
        attachment = Attachment(
            kind="voice" if voice else kind,
            name=filename or f"{kind}.{mime_type.partition('/')[2].partition(';')[0] or 'bin'}",
            mime_type=mime_type,
            ref={"media_id": _str(body, "id")},
        )
        if caption:
            attachment["caption"] = caption
        return (f"[{label}] {caption}" if caption else f"[{label}]"), [attachment], None
    if kind == "reaction":
        emoji = _opt_str(body, "emoji")
        return (f"[reaction {emoji}]" if emoji else "[reaction removed]"), [], _opt_str(body, "message_id")
    if kind == "location":
        place = ", ".join(text for key in ("name", "address") if (text := _opt_str(body, key)))
        where = f"{_number(body, 'latitude')}, {_number(body, 'longitude')}"
        return f"[location: {place} ({where})]" if place else f"[location: {where}]", [], None
    if kind == "contacts":
        cards = []
        contacts = raw_body if isinstance(raw_body, list) else _list(message, "contacts")
        for contact in map(_dict, contacts):
            name = _opt_str(_dict(contact.get("name") or {}), "formatted_name") or "contact"
            phones = ", ".join(
                phone for item in _list(contact, "phones") if (phone := _opt_str(_dict(item), "phone"))
            )
            cards.append(f"{name}, {phones}" if phones else name)
        return f"[contact card: {'; '.join(cards)}]", [], None
    if kind == "interactive":
        reply = _dict(body.get(_opt_str(body, "type") or "") or {})
        return _opt_str(reply, "title") or "[interactive reply]", [], None
    if kind == "button":
        return _opt_str(body, "text") or _opt_str(body, "payload") or "[button]", [], None
    if kind == "order":
        items = len(_list(body, "product_items"))
        note = _opt_str(body, "text")
        return f"[order: {items} item{'s' if items != 1 else ''}]" + (f" {note}" if note else ""), [], None
    if kind == "system":
        return f"[system: {_opt_str(body, 'body') or _opt_str(body, 'type') or 'update'}]", [], None
    first = _dict((_list(message, "errors") or [{}])[0])
    detail = _opt_str(_dict(first.get("error_data") or {}), "details") or _opt_str(first, "title") or kind
    return f"[unsupported message: {detail}]", [], None


def _update(status: dict[str, Any]) -> DeliveryUpdate | None:
    delivery = _STATUSES.get(_opt_str(status, "status") or "")
    if delivery is None:
        return None  # "deleted", "warning"… say nothing about delivery
    error = None
    if delivery == DeliveryStatus.FAILED:
        first = _dict((_list(status, "errors") or [{}])[0])
        details = _opt_str(_dict(first.get("error_data") or {}), "details")
        code = first.get("code", "?")
        error = f"{code}: {_opt_str(first, 'title') or _opt_str(first, 'message') or 'failed'}"
        error += f" — {details}" if details else ""
    return DeliveryUpdate(
        channel=CHANNEL,
        provider_message_id=_str(status, "id"),
        status=delivery,
        at=_time(status["timestamp"]),
        error=error,
    )


# --- strict readers ---------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedDelivery(f"expected an object, got {type(value).__name__}")
    return value


def _list(container: dict[str, Any], key: str) -> list[Any]:
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedDelivery(f"{key}: expected a list, got {type(value).__name__}")
    return value


def _str(container: dict[str, Any], key: str) -> str:
    value = container.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # an id or a timestamp sent as a number means the same
    if not isinstance(value, str):
        raise MalformedDelivery(f"{key}: expected a string, got {type(value).__name__}")
    return value


def _opt_str(container: dict[str, Any], key: str) -> str | None:
    return None if container.get(key) is None else _str(container, key)


def _number(container: dict[str, Any], key: str) -> str:
    value = container.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MalformedDelivery(f"{key}: expected a number, got {type(value).__name__}")
    return str(value)


def _time(unix: Any) -> datetime:
    if isinstance(unix, bool) or not isinstance(unix, int | str):
        raise MalformedDelivery(f"timestamp: expected a unix time, got {type(unix).__name__}")
    return datetime.fromtimestamp(int(unix), tz=UTC)
