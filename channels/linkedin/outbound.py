"""Unipile's API, as Threadline uses it: send into a chat, download an attachment, know our own account.

Every failure becomes one of core's kinds (core.errors): `RetryableDelivery` when Unipile did not take
the request and trying again later can work (unreachable, 429, 5xx), `PermanentDelivery` with the
reason when it refused this message, `ChannelBroken` when no message can go until a person acts (the
API key refused, the LinkedIn account disconnected).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx

from core.errors import (
    UNKNOWN_OUTCOME_CODE,
    ChannelBroken,
    DeliveryError,
    PermanentDelivery,
    RetryableDelivery,
)
from core.ports import FetchedFile, Outbound, SendReceipt

log = logging.getLogger(__name__)

UNKNOWN_OUTCOME = (
    "Unipile did not answer in time, so this message may or may not have reached the lead on LinkedIn. "
    "Check the chat in LinkedIn before you Retry."
)
BAD_KEY = "Unipile refused the API key: set UNIPILE_API_KEY to a valid access token."
DISCONNECTED = (
    "The LinkedIn account is disconnected in Unipile (LinkedIn logged it out): reconnect it in Unipile."
)
# Unipile's error types (RFC 7807 `type`) that mean the account itself needs a person, whatever the status.
_ACCOUNT_GONE = ("disconnected_account", "invalid_authorization", "account_restricted")


class UnipileClient:
    def __init__(self, *, api_url: str, api_key: str, account_id: str, client: httpx.Client) -> None:
        self.api_url = api_url
        self.account_id = account_id
        self._headers = {"X-API-KEY": api_key, "Accept": "application/json"}
        self._client = client

    # --- send ----------------------------------------------------------------------------------------

    def send(self, message: Outbound) -> SendReceipt:
        """`POST /chats/{chat_id}/messages` as multipart: `text`, and each file as `attachments`."""
        if message.template is not None:
            raise PermanentDelivery("LinkedIn has no message templates; send text.")
        if not message.text.strip() and not message.files:
            raise PermanentDelivery("The message is empty: nothing to send.")
        fields: list[tuple[str, tuple[str | None, bytes | str, str | None]]] = []
        if message.text.strip():
            fields.append(("text", (None, message.text, None)))
        fields += [("attachments", (file.name, file.content, file.mime_type)) for file in message.files]
        url = f"{self.api_url}/chats/{quote(message.to, safe='')}/messages"
        try:
            response = self._client.post(url, files=fields, headers=self._headers)
        except (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.PoolTimeout,
            httpx.WriteError,
            httpx.WriteTimeout,
        ) as exc:
            # The request never reached Unipile whole: safe to send again.
            raise RetryableDelivery(f"Unipile could not be reached ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            # The request may have arrived; sending again could give the lead the message twice.
            raise PermanentDelivery(UNKNOWN_OUTCOME, code=UNKNOWN_OUTCOME_CODE) from exc
        if not response.is_success:
            raise unipile_error(response, "refused the message")
        answer = json_of(response)
        sent_id = answer.get("message_id")
        if not isinstance(sent_id, str) or not sent_id:
            # Taken, but unnamed: the echo cannot be recognised, so it will show as "sent from LinkedIn".
            log.warning("Unipile took a message without naming it (message_id %r)", sent_id)
            return SendReceipt(f"unnamed:{message.message_id}")
        return SendReceipt(sent_id)

    # --- files ---------------------------------------------------------------------------------------

    def attachment(self, message_id: str, attachment_id: str, *, name: str, mime_type: str) -> FetchedFile:
        """`GET /messages/{message_id}/attachments/{attachment_id}`: the file's bytes."""
        path = f"messages/{quote(message_id, safe='')}/attachments/{quote(attachment_id, safe='')}"
        url = f"{self.api_url}/{path}"
        try:
            response = self._client.get(url, headers={"X-API-KEY": self._headers["X-API-KEY"]})
        except httpx.TransportError as exc:  # reading is safe to repeat
            raise RetryableDelivery(f"Unipile could not be reached ({type(exc).__name__})") from exc
        if not response.is_success:
            raise unipile_error(response, "did not give the file")
        given = response.headers.get("Content-Type", "").partition(";")[0].strip()
        usable = given and given not in {"application/octet-stream", "application/json"}
        return FetchedFile(name=name, mime_type=given if usable else mime_type, content=response.content)

    # --- our own account -----------------------------------------------------------------------------

    def own_provider_id(self) -> str:
        """`GET /accounts/{account_id}`: our LinkedIn member id (`connection_params.im.id`)."""
        response = self.account()
        if not response.is_success:
            raise unipile_error(response, "did not describe the account")
        params = json_of(response).get("connection_params")
        im = params.get("im") if isinstance(params, dict) else None
        own = im.get("id") if isinstance(im, dict) else None
        if not isinstance(own, str) or not own:
            raise PermanentDelivery("Unipile's account has no LinkedIn member id (connection_params.im.id)")
        return own

    def account(self) -> httpx.Response:
        url = f"{self.api_url}/accounts/{quote(self.account_id, safe='')}"
        return self._client.get(url, headers=self._headers)


def unipile_error(response: httpx.Response, what: str) -> DeliveryError:
    """Unipile's answer (RFC 7807: type, status, title, detail) as one of core's failure kinds."""
    problem = json_of(response)
    kind = str(problem.get("type") or "")
    title, detail = problem.get("title"), problem.get("detail")
    said = "; ".join(str(part) for part in (title, detail) if part) or f"HTTP {response.status_code}"
    code = kind or str(response.status_code)
    status = response.status_code
    if any(gone in kind for gone in _ACCOUNT_GONE):
        return ChannelBroken(f"{DISCONNECTED} (Unipile: {said})", code=code)
    if status == 401:
        return ChannelBroken(f"{BAD_KEY} (Unipile: {said})", code=code)
    if status == 403:
        return ChannelBroken(
            f"Unipile does not let this key use the LinkedIn account ({said}): check the key and the "
            "account's features in Unipile.",
            code=code,
        )
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After")
        return RetryableDelivery(
            f"Unipile {what} for now: {said}",
            code=code,
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    if status == 404:
        return PermanentDelivery(f"LinkedIn: the chat or message is not there any more ({said})", code=code)
    return PermanentDelivery(f"LinkedIn (through Unipile) {what}: {said}", code=code)


def json_of(response: httpx.Response) -> dict[str, object]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
