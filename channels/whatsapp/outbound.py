"""Sending through the Graph API, and Graph's errors mapped to core's kinds.

- 429, throttling (4, 80007, 130429, 131048, 131056), 5xx, temporary (1, 2, 131016, 133004)
  → `RetryableDelivery`, honouring any `Retry-After`;
- 131047, more than 24 h since the lead wrote → `NeedsTemplate` (the rep is offered WHATSAPP_TEMPLATES);
- 401, 190 (token), 0 with OAuthException, 10 and 200-299 (permission), 131031, 131042, 133010, 368
  (the account) → `ChannelBroken`, saying what to fix;
- anything else (131026, 131051, 100, 131000…) → `PermanentDelivery` with the reason in words;
- connection refused, connect/write/pool timeout → `RetryableDelivery` (nothing reached Meta);
- connection lost or read timeout after sending → `PermanentDelivery` "outcome unknown": sending again
  could give the lead the message twice, so a person decides (Retry).

The 24-hour window is also checked before calling Graph when core says when the lead last wrote
(`Outbound.last_inbound_at`): free text after it raises `NeedsTemplate` without a doomed request.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from channels.whatsapp.media import WhatsAppMedia, media_message, reply_parts
from core.errors import (
    UNKNOWN_OUTCOME_CODE,
    ChannelBroken,
    DeliveryError,
    NeedsTemplate,
    PermanentDelivery,
    RetryableDelivery,
)
from core.ports import Outbound, PartSent, SendReceipt, Template, ignore_part

TEXT_LIMIT = 4096  # WhatsApp's maximum text body
UNKNOWN_OUTCOME = (
    "No answer from WhatsApp; the message may or may not have been delivered. Retry to send it again."
)
WINDOW_CLOSED = "More than 24 hours since the lead last wrote: WhatsApp only takes an approved template now."
REPLY_WINDOW = timedelta(hours=24)  # WhatsApp's customer service window after the lead's last message
_THROTTLED = {4, 80007, 130429, 131048, 131056}
_TEMPORARY = {1, 2, 131016, 133004}
OUT_OF_WINDOW = 131047
_BAD_TOKEN = 190
_NO_PERMISSION = {10, 200, 299}  # 200-299 are all permission errors
# Graph's codes in words a rep can read: send errors and failed statuses, shown in the thread.
REASONS = {
    100: "WhatsApp rejected a parameter of the message",
    131000: "WhatsApp failed to send it for an unknown reason",
    131008: "a required parameter is missing",
    131009: "a parameter value is not valid",
    131021: "the lead's number is our own number",
    131026: (
        "WhatsApp could not deliver it: the number may not be on WhatsApp, or the lead has not "
        "accepted WhatsApp's latest terms or uses an old app version"
    ),
    131049: "WhatsApp chose not to deliver it (Meta limits how many marketing messages a person gets)",
    131051: "WhatsApp does not support this message type",
    131053: "WhatsApp could not read the file",
    132000: "the template's parameters do not match the approved template",
    132001: "the template does not exist in that language, or is not approved yet",
    132005: "the template's text is too long once filled in",
    132007: "the template's content breaks WhatsApp's policy",
    132012: "the template's parameters are of the wrong kind",
    132015: "the template is paused because of low quality",
    132016: "the template is disabled because of low quality",
    130472: "WhatsApp is holding messages to this number back (an experiment Meta runs)",
}
_ACCOUNT_BROKEN = {
    131031: "the WhatsApp Business account is locked or restricted",
    131042: "the WhatsApp Business account has a payment problem: fix its payment method",
    133010: "the phone number is not registered with the Cloud API: register WHATSAPP_PHONE_NUMBER_ID",
    368: "the WhatsApp Business account is temporarily blocked for policy violations",
}


class WhatsAppSender:
    name = "whatsapp"  # a core.ports.Sender on its own, as tests use it

    def __init__(
        self,
        *,
        api_url: str,
        phone_number_id: str,
        access_token: str,
        client: httpx.Client | None = None,
        timeout: float = 15.0,
        templates: Sequence[Template] = (),
    ) -> None:
        self._url = f"{api_url.rstrip('/')}/{phone_number_id}/messages"
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._client = client or httpx.Client(timeout=timeout)
        self.templates = tuple(templates)
        self.media = WhatsAppMedia(
            api_url=api_url.rstrip("/"),
            phone_number_id=phone_number_id,
            access_token=access_token,
            client=self._client,
            error_of=graph_error,
        )

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        """Send a text; longer than WhatsApp allows, it goes as several messages (the receipt is the last).

        Each part taken by Graph is reported through `on_part` before the next is sent, and parts an
        earlier attempt already sent are skipped: a retry after part 2 failed never repeats part 1.
        """
        if message.template is not None:
            return self._send_template(message.to, message.template)
        self._check_window(message)
        if message.files:
            return self._send_files(message, on_part)
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

    def _send_files(self, message: Outbound, on_part: PartSent) -> SendReceipt:
        """Each file uploaded, then sent as a media message by its id (media.reply_parts: the text as
        the first caption where it fits); parts taken are reported and skipped on a retry, as for text."""
        parts = reply_parts(message.text, message.files, split_text)
        receipt = None
        for number, part in enumerate(parts[message.parts_sent :], start=message.parts_sent + 1):
            if part.file is None:
                receipt = self._send_text(message.to, part.text)
            else:
                media_id = self.media.upload(part.file)
                body = media_message(message.to, part.kind, media_id, name=part.file.name, caption=part.text)
                receipt = self._post(body)
            on_part(number, receipt.provider_message_id)
        if receipt is None:
            raise PermanentDelivery("Every part of this message was sent already.")
        return receipt

    def _check_window(self, message: Outbound) -> None:
        """Free text more than 24 hours after the lead last wrote: WhatsApp would refuse it (131047)."""
        last = message.last_inbound_at
        if last is not None and datetime.now(UTC) - last > REPLY_WINDOW:
            raise self.window_closed()

    def window_closed(self) -> NeedsTemplate:
        if self.templates:
            return NeedsTemplate(f"{WINDOW_CLOSED} Pick one below to send it.", code=str(OUT_OF_WINDOW))
        return NeedsTemplate(
            f"{WINDOW_CLOSED} None is configured here: set WHATSAPP_TEMPLATES (name:language, e.g. "
            "follow_up:en_US, comma-separated) to offer your approved templates in the thread.",
            code=str(OUT_OF_WINDOW),
        )

    def _send_template(self, to: str, template: Template) -> SendReceipt:
        if template not in self.templates:
            raise PermanentDelivery(
                f"The template {template.name} ({template.language}) is not in WHATSAPP_TEMPLATES."
            )
        language = {"policy": "deterministic", "code": template.language}
        return self._post(
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "template",
                "template": {"name": template.name, "language": language},
            }
        )

    def _send_text(self, to: str, body: str) -> SendReceipt:
        return self._post(
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"preview_url": False, "body": body},
            }
        )

    def _post(self, payload: dict[str, Any]) -> SendReceipt:
        try:
            response = self._client.post(self._url, json=payload, headers=self._headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.WriteTimeout, httpx.PoolTimeout) as exc:
            # The request never got (wholly) to Meta: nothing was sent, so sending again is safe.
            raise RetryableDelivery(f"WhatsApp could not be reached ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            # The request may have arrived; sending again could give the lead the message twice.
            raise PermanentDelivery(UNKNOWN_OUTCOME, code=UNKNOWN_OUTCOME_CODE) from exc
        if response.is_success:
            return SendReceipt(str(response.json()["messages"][0]["id"]))
        error = graph_error(response)
        if isinstance(error, NeedsTemplate):
            raise self.window_closed() from error
        raise error


def graph_error(response: httpx.Response) -> DeliveryError:
    """Graph's answer to a failed send, as the core kind that says what happens next."""
    error = _error_of(response)
    code = error.get("code") if isinstance(error.get("code"), int) else None
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    message = error.get("message")
    said = message if isinstance(message, str) and message else f"HTTP {response.status_code}"
    details = details if isinstance(details, str) else None
    graph_said = f"{said} — {details}" if details and details not in said else said
    reason = f"{REASONS[code]} (WhatsApp: {graph_said})" if code in REASONS else graph_said
    label = str(code if code is not None else response.status_code)
    if code == OUT_OF_WINDOW:
        return NeedsTemplate(WINDOW_CLOSED, code=label)
    broken = _broken(response.status_code, code, error.get("type"), graph_said)
    if broken is not None:
        return ChannelBroken(broken, code=label)
    if code in _THROTTLED or code in _TEMPORARY or response.status_code == 429 or response.status_code >= 500:
        return RetryableDelivery(
            f"WhatsApp: {reason}", code=label, retry_after=_retry_after(response.headers.get("Retry-After"))
        )
    return PermanentDelivery(f"WhatsApp refused the message: {reason}", code=label)


def _broken(status: int, code: int | None, kind: object, said: str) -> str | None:
    """Why every send would fail until a person acts (the token, the permissions, the account)."""
    if code == _BAD_TOKEN or status == 401 or (code == 0 and kind == "OAuthException"):
        return (
            "WhatsApp refused the access token (expired, revoked or invalid): create a new one in Meta's "
            f"Business settings and set WHATSAPP_ACCESS_TOKEN. (WhatsApp: {said})"
        )
    if code in _NO_PERMISSION or (code is not None and 200 <= code <= 299):
        return (
            "The access token lacks permission to send for this number: give it whatsapp_business_messaging "
            f"for WHATSAPP_PHONE_NUMBER_ID, then set WHATSAPP_ACCESS_TOKEN. (WhatsApp: {said})"
        )
    if code in _ACCOUNT_BROKEN:
        return f"{_ACCOUNT_BROKEN[code][0].upper()}{_ACCOUNT_BROKEN[code][1:]}. (WhatsApp: {said})"
    return None


def _error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait, from `Retry-After` (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, min(seconds, 3600.0)) if seconds == seconds else None


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
