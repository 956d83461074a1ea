"""WhatsApp Cloud API: verify and parse Meta's webhooks, send text, map Graph errors to core's kinds.

Public surface: `verify_signature`, `parse_webhook` (→ `ParsedWebhook`), `WhatsAppSender`,
`register_routes`. Core never sees Meta's wire format; this module never sees the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiohttp import web

from core.errors import PermanentDelivery, RetryableDelivery
from core.messages import DeliveryUpdate, Inbound, LeadProfile, Outbound, SendReceipt
from core.metrics import WEBHOOK_REJECTED
from core.models import Channel, DeliveryStatus

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096  # WhatsApp's maximum text body
UNKNOWN_OUTCOME = (
    "No answer from WhatsApp; the message may or may not have been delivered. Retry to send it again."
)
_STATUSES = {
    s.value: s
    for s in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED)
}
_RETRYABLE_CODES = {1, 2, 4, 80007, 130429, 131000, 131016, 131048, 131056, 133004}
_OUT_OF_WINDOW = 131047
_BAD_TOKEN = 190


class MalformedWebhook(ValueError):
    """The body is JSON but not the shape Meta sends."""


@dataclass(frozen=True)
class ParsedWebhook:
    messages: list[Inbound] = field(default_factory=list)
    updates: list[DeliveryUpdate] = field(default_factory=list)


# --- inbound ---------------------------------------------------------------------------------------


def verify_signature(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def parse_webhook(payload: Any) -> ParsedWebhook:
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise MalformedWebhook(
            "not a WhatsApp Business Account webhook (object must be whatsapp_business_account)"
        )
    parsed = ParsedWebhook()
    try:
        for entry in payload.get("entry") or []:
            for change in entry.get("changes") or []:
                if change.get("field") != "messages":
                    continue  # account, template and group updates are not conversations
                value = change["value"]
                account = str(value["metadata"]["phone_number_id"])
                names = {
                    str(c.get("wa_id")): (c.get("profile") or {}).get("name")
                    for c in value.get("contacts") or []
                }
                for message in value.get("messages") or []:
                    parsed.messages.append(_inbound(message, account, names))
                for status in value.get("statuses") or []:
                    update = _update(status)
                    if update is not None:
                        parsed.updates.append(update)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedWebhook(f"unexpected webhook shape: {type(exc).__name__}: {exc}") from exc
    return parsed


def _inbound(message: dict[str, Any], account: str, names: dict[str, str | None]) -> Inbound:
    wa_id = str(message["from"])
    kind = str(message["type"])
    text, attachments, reply_to = _describe(kind, message)
    if reply_to is None:
        reply_to = (message.get("context") or {}).get("id")
    return Inbound(
        channel=Channel.WHATSAPP,
        channel_account=account,
        provider_thread_id=wa_id,
        provider_message_id=str(message["id"]),
        sender=LeadProfile(provider_id=wa_id, name=names.get(wa_id), phone="+" + wa_id),
        sent_at=_time(message["timestamp"]),
        kind=kind,
        text=text,
        attachments=attachments,
        reply_to_provider_id=reply_to,
    )


def _describe(kind: str, message: dict[str, Any]) -> tuple[str, list[dict[str, Any]], str | None]:
    """The text a thread shows for any message type: never empty, never silent."""
    body = message.get(kind) or {}
    if kind == "text":
        return str(body.get("body", "")), [], None
    if kind in {"image", "video", "audio", "document", "sticker"}:
        attachment = {"type": kind} | {
            key: body[key] for key in ("id", "mime_type", "sha256", "filename") if key in body
        }
        label = "voice message" if kind == "audio" and body.get("voice") else kind
        if body.get("filename"):
            label += f": {body['filename']}"
        caption = body.get("caption")
        return (f"[{label}] {caption}" if caption else f"[{label}]"), [attachment], None
    if kind == "reaction":
        emoji = body.get("emoji")
        return (f"[reaction {emoji}]" if emoji else "[reaction removed]"), [], body.get("message_id")
    if kind == "location":
        place = ", ".join(str(body[k]) for k in ("name", "address") if body.get(k))
        where = f"{body.get('latitude')}, {body.get('longitude')}"
        return f"[location: {place} ({where})]" if place else f"[location: {where}]", [], None
    if kind == "contacts":
        cards = []
        for contact in body if isinstance(body, list) else message.get("contacts") or []:
            name = (contact.get("name") or {}).get("formatted_name") or "contact"
            phones = ", ".join(p.get("phone", "") for p in contact.get("phones") or [])
            cards.append(f"{name}, {phones}" if phones else name)
        return f"[contact card: {'; '.join(cards)}]", [], None
    if kind == "interactive":
        reply = body.get(body.get("type", "")) or {}
        return str(reply.get("title") or "[interactive reply]"), [], None
    if kind == "button":
        return str(body.get("text") or body.get("payload") or "[button]"), [], None
    if kind == "order":
        items = len(body.get("product_items") or [])
        return (
            f"[order: {items} item{'s' if items != 1 else ''}]"
            + (f" {body['text']}" if body.get("text") else ""),
            [],
            None,
        )
    if kind == "system":
        return f"[system: {body.get('body') or body.get('type') or 'update'}]", [], None
    errors = message.get("errors") or [{}]
    detail = (errors[0].get("error_data") or {}).get("details") or errors[0].get("title") or kind
    return f"[unsupported message: {detail}]", [], None


def _update(status: dict[str, Any]) -> DeliveryUpdate | None:
    delivery = _STATUSES.get(str(status.get("status")))
    if delivery is None:
        return None  # "deleted", "warning"… say nothing about delivery
    error = None
    if delivery == DeliveryStatus.FAILED:
        first = (status.get("errors") or [{}])[0]
        details = (first.get("error_data") or {}).get("details")
        error = f"{first.get('code', '?')}: {first.get('title') or first.get('message') or 'failed'}"
        error += f" — {details}" if details else ""
    return DeliveryUpdate(
        channel=Channel.WHATSAPP,
        provider_message_id=str(status["id"]),
        status=delivery,
        at=_time(status["timestamp"]),
        error=error,
    )


def _time(unix: Any) -> datetime:
    return datetime.fromtimestamp(int(unix), tz=UTC)


# --- outbound --------------------------------------------------------------------------------------


class WhatsAppSender:
    channel = Channel.WHATSAPP

    def __init__(
        self,
        *,
        api_url: str,
        phone_number_id: str,
        access_token: str,
        client: httpx.Client | None = None,
        timeout: float = 15.0,
    ) -> None:
        self._url = f"{api_url.rstrip('/')}/{phone_number_id}/messages"
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._client = client or httpx.Client(timeout=timeout)

    def send(self, message: Outbound) -> SendReceipt:
        """Send a text; longer than WhatsApp allows, it goes as several messages (the receipt is the last)."""
        receipt = None
        for part in split_text(message.text):
            receipt = self._send_text(message.to, part)
        assert receipt is not None
        return receipt

    def _send_text(self, to: str, body: str) -> SendReceipt:
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"preview_url": False, "body": body},
        }
        try:
            response = self._client.post(self._url, json=payload, headers=self._headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise RetryableDelivery(f"WhatsApp could not be reached ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            # The request may have arrived; sending again could give the lead the message twice.
            raise PermanentDelivery(UNKNOWN_OUTCOME, code="unknown_outcome") from exc
        if response.is_success:
            return SendReceipt(str(response.json()["messages"][0]["id"]))
        raise _graph_error(response)


def _graph_error(response: httpx.Response) -> Exception:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code = error.get("code")
    details = (error.get("error_data") or {}).get("details")
    said = error.get("message") or f"HTTP {response.status_code}"
    reason = f"{said} — {details}" if details and details not in said else said
    if code == _OUT_OF_WINDOW:
        return PermanentDelivery(
            "More than 24 hours since the lead last wrote: WhatsApp only allows a template message now.",
            code=str(code),
        )
    if code == _BAD_TOKEN:
        return PermanentDelivery("WhatsApp access token is invalid or expired.", code=str(code))
    if code in _RETRYABLE_CODES or response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("Retry-After")
        return RetryableDelivery(
            f"WhatsApp: {reason}",
            code=str(code or response.status_code),
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    return PermanentDelivery(
        f"WhatsApp refused the message: {reason}", code=str(code or response.status_code)
    )


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut at a paragraph, line or word break, so each part reads on its own."""
    parts: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    parts.append(text)
    return [part for part in parts if part]


# --- HTTP ------------------------------------------------------------------------------------------

WebhookSink = Callable[[ParsedWebhook], Awaitable[None]]


def register_routes(
    app: web.Application,
    *,
    sink: WebhookSink,
    app_secret: str,
    verify_token: str,
    max_body_bytes: int = 1_048_576,
) -> None:
    async def handshake(request: web.Request) -> web.Response:
        query = request.query
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") == "subscribe" and verify_token and hmac.compare_digest(token, verify_token):
            return web.Response(text=query.get("hub.challenge", ""), content_type="text/plain")
        return web.json_response({"ok": False, "error": "verification failed"}, status=403)

    async def receive(request: web.Request) -> web.Response:
        raw = await _read_limited(request, max_body_bytes)
        if raw is None:
            WEBHOOK_REJECTED.labels("whatsapp", "too_large").inc()
            return web.json_response({"ok": False, "error": "body too large"}, status=413)
        if not verify_signature(app_secret, raw, request.headers.get("X-Hub-Signature-256")):
            log.warning("WhatsApp webhook refused: bad or missing X-Hub-Signature-256")
            WEBHOOK_REJECTED.labels("whatsapp", "signature").inc()
            return web.json_response({"ok": False, "error": "invalid signature"}, status=401)
        try:
            parsed = parse_webhook(_json(raw))
        except MalformedWebhook as exc:
            log.warning("WhatsApp webhook refused: %s", exc)
            WEBHOOK_REJECTED.labels("whatsapp", "malformed").inc()
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        await sink(parsed)  # stored before we answer: a 200 promises Meta we have it
        log.info("WhatsApp webhook: %d messages, %d statuses", len(parsed.messages), len(parsed.updates))
        return web.json_response({"ok": True})

    app.router.add_get("/webhooks/whatsapp", handshake)
    app.router.add_post("/webhooks/whatsapp", receive)


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None if it is over `limit` bytes (Content-Length is not trusted alone)."""
    if (request.content_length or 0) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise MalformedWebhook("body is not JSON") from exc
