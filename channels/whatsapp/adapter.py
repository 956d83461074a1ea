"""The WhatsApp adapter: the channel port (core.ports) over Meta's webhooks and the Graph API."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

import httpx

from channels.whatsapp.inbound import CHANNEL, parse_webhook, shape_problem, verify_signature
from channels.whatsapp.outbound import WhatsAppSender
from channels.whatsapp.settings import REQUIRED, WhatsAppSettings
from core.metrics import MeteredClient
from core.ports import (
    ChannelOff,
    FetchedFile,
    Health,
    Outbound,
    Parsed,
    PartSent,
    Poller,
    Reply,
    SendReceipt,
    Template,
    Verified,
    Webhook,
    WebhookRequest,
    ignore_part,
    refuse,
    unconfigured,
)
from core.settings import secret

PATH = "/webhooks/whatsapp"


class WhatsAppChannel:
    name = CHANNEL

    def __init__(self, settings: WhatsAppSettings, *, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self._client = client or MeteredClient("graph", timeout=15.0)
        self._sender = WhatsAppSender(
            api_url=settings.WHATSAPP_API_URL,
            phone_number_id=settings.WHATSAPP_PHONE_NUMBER_ID or "",
            access_token=secret(settings.WHATSAPP_ACCESS_TOKEN),
            client=self._client,
            templates=settings.templates,
        )

    # --- inbound -------------------------------------------------------------------------------------

    def webhooks(self) -> Sequence[Webhook]:
        return [Webhook("GET", PATH, self._handshake), Webhook("POST", PATH, self._receive)]

    def pollers(self) -> Sequence[Poller]:
        return []

    def _handshake(self, request: WebhookRequest) -> Reply | Verified:
        """Meta's subscription check: echo `hub.challenge` when the verify token matches."""
        query = request.query
        given = query.get("hub.verify_token", "").encode("utf-8", "replace")
        expected = secret(self.settings.WHATSAPP_VERIFY_TOKEN).encode()
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(given, expected):
            return Reply(200, query.get("hub.challenge", ""), content_type="text/plain")
        return refuse(403, "verification failed: wrong hub.verify_token or hub.mode")

    def _receive(self, request: WebhookRequest) -> Reply | Verified:
        app_secret = secret(self.settings.WHATSAPP_APP_SECRET)
        if not verify_signature(app_secret, request.body, request.headers.get("X-Hub-Signature-256")):
            return refuse(401, "bad or missing X-Hub-Signature-256")
        problem = shape_problem(request.body)
        if problem is not None:
            return refuse(400, problem)
        return Verified(request.body)

    def parse(self, body: bytes) -> Parsed:
        return parse_webhook(body)

    # --- outbound ------------------------------------------------------------------------------------

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        return self._sender.send(message, on_part)

    def templates(self) -> Sequence[Template]:
        """WHATSAPP_TEMPLATES: what a rep is offered once the 24-hour window is closed."""
        return self._sender.templates

    def fetch_file(self, ref: Mapping[str, str]) -> FetchedFile:
        """A lead's media (`ref` {"media_id": …}), from Graph (channels/whatsapp/media.py)."""
        return self._sender.media.fetch(ref)

    # --- health --------------------------------------------------------------------------------------

    def health(self) -> Sequence[Health]:
        """Ask Graph about our number with our token: proves the URL, the number id and the token."""
        settings = self.settings
        url = f"{settings.WHATSAPP_API_URL}/{settings.WHATSAPP_PHONE_NUMBER_ID}"
        try:
            response = self._client.get(
                url,
                params={"fields": "display_phone_number,verified_name"},
                headers={"Authorization": f"Bearer {secret(settings.WHATSAPP_ACCESS_TOKEN)}"},
            )
        except httpx.HTTPError as exc:
            return [
                Health(
                    "fail",
                    "whatsapp",
                    f"{settings.WHATSAPP_API_URL} unreachable: {exc or type(exc).__name__}",
                )
            ]
        if not response.is_success:
            error = _error_of(response)
            if error.get("code") == 190:
                detail = "the access token was refused (invalid or expired): replace WHATSAPP_ACCESS_TOKEN"
            else:
                detail = (
                    f"Graph answered {response.status_code}: {error.get('message') or response.text[:200]}"
                )
            return [Health("fail", "whatsapp", detail)]
        number = response.json()
        shown = number.get("display_phone_number") or settings.WHATSAPP_PHONE_NUMBER_ID
        name = f" ({number['verified_name']})" if number.get("verified_name") else ""
        return [
            Health("ok", "whatsapp", f"number {shown}{name}; token accepted by {settings.WHATSAPP_API_URL}"),
            Health("ok", "whatsapp webhook", f"point Meta at https://<this server>{PATH} (verify token set)"),
            _templates_line(settings.templates),
        ]


def _templates_line(templates: Sequence[Template]) -> Health:
    if not templates:
        return Health(
            "off",
            "whatsapp templates",
            "none: after the 24-hour window a rep cannot write; set WHATSAPP_TEMPLATES=name:language,…",
        )
    offered = ", ".join(f"{t.name} ({t.language})" for t in templates)
    return Health("ok", "whatsapp templates", f"offered after the 24-hour window: {offered}")


def _error_of(response: httpx.Response) -> dict[str, object]:
    try:
        error = response.json().get("error")
    except ValueError:
        return {}
    return error if isinstance(error, dict) else {}


def load() -> WhatsAppChannel | ChannelOff:
    settings = WhatsAppSettings.load()
    return unconfigured(CHANNEL, REQUIRED, settings.missing()) or WhatsAppChannel(settings)
