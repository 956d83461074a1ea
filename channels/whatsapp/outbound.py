"""Sending through the Graph API, and Graph's errors mapped to core's kinds.

| Graph says | core kind |
|---|---|
| throttled (130429, 80007…), 5xx, temporary (131000…) | `RetryableDelivery`, after any `Retry-After` |
| 131047: more than 24 h since the lead wrote | `PermanentDelivery` (a template is needed) |
| 190: token invalid or expired | `ChannelBroken` (every send would fail until it is replaced) |
| anything else | `PermanentDelivery` with Graph's reason |
| connection refused | `RetryableDelivery` (nothing reached Meta) |
| connection lost after sending | `PermanentDelivery` "outcome unknown": sending again could double it |
"""

from __future__ import annotations

import httpx

from core.errors import ChannelBroken, PermanentDelivery, RetryableDelivery
from core.ports import Outbound, PartSent, SendReceipt, ignore_part

TEXT_LIMIT = 4096  # WhatsApp's maximum text body
UNKNOWN_OUTCOME = (
    "No answer from WhatsApp; the message may or may not have been delivered. Retry to send it again."
)
_RETRYABLE_CODES = {1, 2, 4, 80007, 130429, 131000, 131016, 131048, 131056, 133004}
_OUT_OF_WINDOW = 131047
_BAD_TOKEN = 190


class WhatsAppSender:
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

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        """Send a text; longer than WhatsApp allows, it goes as several messages (the receipt is the last).

        Each part taken by Graph is reported through `on_part` before the next is sent, and parts an
        earlier attempt already sent are skipped: a retry after part 2 failed never repeats part 1.
        """
        if message.files or message.template:
            raise PermanentDelivery("Files and templates cannot be sent to WhatsApp leads yet; send text.")
        parts = split_text(message.text)
        if not parts:
            raise PermanentDelivery("The message is empty: nothing to send.")
        receipt = None
        for number, part in enumerate(parts[message.parts_sent :], start=message.parts_sent + 1):
            receipt = self._send_text(message.to, part)
            on_part(number, receipt.provider_message_id)
        if receipt is None:
            raise PermanentDelivery("Every part of this message was sent already.")
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
        raise graph_error(response)


def graph_error(response: httpx.Response) -> Exception:
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
        return ChannelBroken(
            "WhatsApp refused the access token (invalid or expired): replace WHATSAPP_ACCESS_TOKEN.",
            code=str(code),
        )
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
