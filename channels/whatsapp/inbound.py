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

from channels.whatsapp.outbound import OUT_OF_WINDOW, REASONS, WINDOW_CLOSED
from core.errors import MalformedDelivery
from core.models import DeliveryStatus
from core.ports import Attachment, DeliveryUpdate, Inbound, LeadProfile, Parsed
from core.ports.reading import list_of, object_of

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
    for entry in list_of(payload, "entry"):
        for change in list_of(object_of(entry), "changes"):
            change = object_of(change)
            if change.get("field") != "messages":
                continue  # account, template and group updates are not conversations
            value = object_of(change["value"])
            account = _str(object_of(value["metadata"]), "phone_number_id")
            names = {
                _str(contact, "wa_id"): _opt_str(object_of(contact.get("profile") or {}), "name")
                for contact in map(object_of, list_of(value, "contacts"))
            }
            for message in list_of(value, "messages"):
                read = partial(_inbound_item, account=account, names=names)
                inbound = _each("message", message, read, skipped)
                if inbound is not None:
                    parsed.messages.append(inbound)
            for status in list_of(value, "statuses"):
                update = _each("status", status, lambda s: _update(object_of(s)), skipped)
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
    return _inbound(object_of(item), account, names)


def _inbound(message: dict[str, Any], account: str, names: dict[str, str | None]) -> Inbound:
    wa_id = _str(message, "from")
    kind = _str(message, "type")
    text, attachments, reply_to = _describe(kind, message)
    context = object_of(message.get("context") or {})
    if reply_to is None:
        reply_to = _opt_str(context, "id")
    referral = object_of(message.get("referral") or {})
    if kind != "reaction":  # a reaction's text is its emoji, nothing else (core.ports.Inbound)
        lines = [*_context_lines(context), text, *_referral_lines(referral)]
        text = "\n".join(line for line in lines if line)
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
        campaign=_opt_str(referral, "headline") or _opt_str(referral, "source_id"),
    )


def _context_lines(context: dict[str, Any]) -> list[str]:
    """What WhatsApp says about where a message came from: forwarded, or asking about a product."""
    lines = []
    if context.get("frequently_forwarded") is True:
        lines.append("[forwarded many times]")
    elif context.get("forwarded") is True:
        lines.append("[forwarded]")
    product = object_of(context.get("referred_product") or {})
    if product:
        lines.append(f"[asking about product {_opt_str(product, 'product_retailer_id') or '(unnamed)'}]")
    return lines


def _referral_lines(referral: dict[str, Any]) -> list[str]:
    """A click-to-WhatsApp ad the lead came through: which one, in a line after what they wrote."""
    if not referral:
        return []
    kind = _opt_str(referral, "source_type") or "ad"
    said = [
        part
        for key in ("headline", "body", "source_url")
        if (part := _opt_str(referral, key)) and part.strip()
    ]
    if not said:
        said = [f"id {_opt_str(referral, 'source_id') or 'unknown'}"]
    return [f"[came from a click-to-WhatsApp {kind}: {' — '.join(said)}]"]


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
        # The emoji itself ("" when the lead took their reaction back): the mirror puts it on the entry.
        return _opt_str(body, "emoji") or "", [], _str(body, "message_id")
    describe = _DESCRIBERS.get(kind)
    if describe is not None:
        return describe(raw_body), [], None
    return _unsupported(kind, message), [], None


def _location(body: Any) -> str:
    body = object_of(body)
    lat, lon = _number(body, "latitude"), _number(body, "longitude")
    place = " — ".join(text for key in ("name", "address") if (text := _opt_str(body, key)))
    lines = [f"[location] {place}" if place else "[location]"]
    lines.append(f"https://www.google.com/maps/search/?api=1&query={lat},{lon}")
    if url := _opt_str(body, "url"):
        lines.append(url)
    return "\n".join(lines)


def _contacts(body: Any) -> str:
    cards = []
    for contact in map(object_of, body if isinstance(body, list) else []):
        name = object_of(contact.get("name") or {})
        full = _opt_str(name, "formatted_name") or " ".join(
            part for key in ("first_name", "last_name") if (part := _opt_str(name, key))
        )
        company = _opt_str(object_of(contact.get("org") or {}), "company")
        card = (full or "(no name)") + (f" ({company})" if company else "")
        phones = [
            phone for item in list_of(contact, "phones") if (phone := _opt_str(object_of(item), "phone"))
        ]
        emails = [mail for item in list_of(contact, "emails") if (mail := _opt_str(object_of(item), "email"))]
        if phones:
            card += f" — phone: {', '.join(phones)}"
        if emails:
            card += f" — email: {', '.join(emails)}"
        cards.append(card)
    if not cards:
        return "[contact card] (empty)"
    return "\n".join(f"[contact card] {card}" for card in cards)


def _interactive(body: Any) -> str:
    body = object_of(body)
    kind = _opt_str(body, "type") or "reply"
    reply = object_of(body.get(kind) or {})
    if kind == "nfm_reply":  # a WhatsApp Flow's form, answered
        title = _opt_str(reply, "body") or _opt_str(reply, "name") or "form sent"
        return f"[form reply] {title}"
    label = {"button_reply": "button reply", "list_reply": "list reply"}.get(kind, kind.replace("_", " "))
    title = _opt_str(reply, "title") or _opt_str(reply, "id") or "(no title)"
    description = _opt_str(reply, "description")
    return f"[{label}] {title}" + (f" — {description}" if description else "")


def _button(body: Any) -> str:
    body = object_of(body)
    return f"[quick reply] {_opt_str(body, 'text') or _opt_str(body, 'payload') or '(no text)'}"


def _order(body: Any) -> str:
    body = object_of(body)
    items = [object_of(item) for item in list_of(body, "product_items")]
    lines = [f"[order] {len(items)} item{'s' if len(items) != 1 else ''}"]
    for item in items:
        price = _opt_number(item, "item_price")
        currency = _opt_str(item, "currency") or ""
        each = f" at {price} {currency}".rstrip() if price is not None else ""
        lines.append(
            f"• {_opt_number(item, 'quantity') or 1} × {_opt_str(item, 'product_retailer_id')}{each}"
        )
    if note := _opt_str(body, "text"):
        lines.append(note)
    return "\n".join(lines)


def _system(body: Any) -> str:
    body = object_of(body)
    return f"[system] {_opt_str(body, 'body') or _opt_str(body, 'type') or 'update'}"


_DESCRIBERS: dict[str, Callable[[Any], str]] = {
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "order": _order,
    "system": _system,
}


def _unsupported(kind: str, message: dict[str, Any]) -> str:
    """Never silence: what arrived, and that it cannot be shown here."""
    first = object_of((list_of(message, "errors") or [{}])[0])
    detail = _opt_str(object_of(first.get("error_data") or {}), "details") or _opt_str(first, "title")
    what = "a message WhatsApp does not support" if kind == "unsupported" else f"a WhatsApp {kind} message"
    notice = f"[unsupported] The lead sent {what}; it cannot be shown here."
    return notice + (f" (WhatsApp: {detail})" if detail else "")


def _update(status: dict[str, Any]) -> DeliveryUpdate | None:
    delivery = _STATUSES.get(_opt_str(status, "status") or "")
    if delivery is None:
        return None  # "deleted", "warning"… say nothing about delivery
    error, code = None, None
    if delivery == DeliveryStatus.FAILED:
        first = object_of((list_of(status, "errors") or [{}])[0])
        details = _opt_str(object_of(first.get("error_data") or {}), "details")
        code = first.get("code")
        said = f"{code if code is not None else '?'}: "
        said += _opt_str(first, "title") or _opt_str(first, "message") or "failed"
        said += f" — {details}" if details else ""
        error = f"{REASONS[code]} (WhatsApp {said})" if code in REASONS else f"WhatsApp {said}"
        if code == OUT_OF_WINDOW:
            error = f"{WINDOW_CLOSED} (WhatsApp {said})"
    return DeliveryUpdate(
        channel=CHANNEL,
        provider_message_id=_str(status, "id"),
        status=delivery,
        at=_time(status["timestamp"]),
        error=error,
        needs_template=code == OUT_OF_WINDOW,
    )


# --- strict readers ---------------------------------------------------------------------------------


def _str(container: dict[str, Any], key: str) -> str:
    value = container.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # an id or a timestamp sent as a number means the same
    if not isinstance(value, str):
        raise MalformedDelivery(f"{key}: expected a string, got {type(value).__name__}")
    return value


def _opt_str(container: dict[str, Any], key: str) -> str | None:
    return None if container.get(key) is None else _str(container, key)


def _opt_number(container: dict[str, Any], key: str) -> str | None:
    return None if container.get(key) is None else _number(container, key)


def _number(container: dict[str, Any], key: str) -> str:
    value = container.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MalformedDelivery(f"{key}: expected a number, got {type(value).__name__}")
    return str(value)


def _time(unix: Any) -> datetime:
    if isinstance(unix, bool) or not isinstance(unix, int | str):
        raise MalformedDelivery(f"timestamp: expected a unix time, got {type(unix).__name__}")
    return datetime.fromtimestamp(int(unix), tz=UTC)
