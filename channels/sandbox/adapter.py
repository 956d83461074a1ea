"""The sandbox adapter: the smallest implementation of the channel port."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import SecretStr

from channels.sandbox.client import SIGNATURE_HEADER, sandbox_key, sign
from core.errors import MalformedDelivery, PermanentDelivery
from core.models import DeliveryStatus
from core.ports import (
    ChannelOff,
    FetchedFile,
    Health,
    Inbound,
    LeadProfile,
    Outbound,
    Parsed,
    PartSent,
    Poller,
    Reply,
    SendReceipt,
    Verified,
    Webhook,
    WebhookRequest,
    ignore_part,
    refuse,
)
from core.settings import Section, secret

log = logging.getLogger(__name__)

CHANNEL = "sandbox"
ACCOUNT = "sandbox"
PATH = "/webhooks/sandbox"


class SandboxSettings(Section):
    THREADLINE_SANDBOX: Literal["on", "off"] = "on"
    SLACK_SIGNING_SECRET: SecretStr | None = None


class SandboxChannel:
    name = CHANNEL

    def __init__(self, signing_secret: str, *, out: Any = print) -> None:
        self._key = sandbox_key(signing_secret)
        self._out = out

    def webhooks(self) -> Sequence[Webhook]:
        return [Webhook("POST", PATH, self._receive)]

    def pollers(self) -> Sequence[Poller]:
        return []

    def _receive(self, request: WebhookRequest) -> Reply | Verified:
        given = (request.headers.get(SIGNATURE_HEADER) or "").encode("utf-8", "replace")
        if not hmac.compare_digest(sign(self._key, request.body).encode(), given):
            return refuse(401, f"bad or missing {SIGNATURE_HEADER}")
        try:
            self.parse(request.body)  # tiny bodies: checking the whole shape here costs nothing
        except MalformedDelivery as exc:
            return refuse(400, str(exc))
        return Verified(request.body)

    def parse(self, body: bytes) -> Parsed:
        try:
            payload = json.loads(body)
            sender = payload["from"]
            fields = (payload["id"], sender["address"], payload["text"])
            name, sent_at = sender.get("name"), payload.get("sent_at")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise MalformedDelivery(f"not a sandbox message: {type(exc).__name__}: {exc}") from exc
        if not all(isinstance(value, str) and value for value in fields) or not isinstance(name, str | None):
            raise MalformedDelivery("not a sandbox message: id, from.address and text must be strings")
        message_id, address, text = fields
        return Parsed(
            messages=[
                Inbound(
                    channel=CHANNEL,
                    channel_account=ACCOUNT,
                    provider_thread_id=address,
                    provider_message_id=message_id,
                    # Only the sandbox's own identity: a simulated lead must never merge into a real one
                    # that has the same address.
                    sender=LeadProfile(provider_id=address, name=name or address),
                    sent_at=_time(sent_at),
                    text=text,
                )
            ]
        )

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        """Print and log the reply as the lead would read it; the sandbox delivers at once."""
        self._out(f"[sandbox] to {message.to}: {message.text}", flush=True)
        for file in message.files:  # the bytes reached the channel: say what the lead would get
            self._out(f"[sandbox]   + {file.name} ({file.mime_type}, {len(file.content)} bytes)", flush=True)
        log.info("sandbox reply to %s delivered (message %s)", message.to, message.message_id)
        return SendReceipt(f"sandbox-out-{message.message_id}", status=DeliveryStatus.DELIVERED)

    def fetch_file(self, ref: Mapping[str, str]) -> FetchedFile:
        raise PermanentDelivery("the sandbox channel carries no files")

    def health(self) -> Sequence[Health]:
        return [
            Health(
                "ok", "sandbox", 'on: `threadline simulate "Name <email or phone>" "text"` writes as a lead'
            )
        ]


def _time(value: object) -> datetime:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(UTC)


def load() -> SandboxChannel | ChannelOff:
    settings = SandboxSettings.load()
    if settings.THREADLINE_SANDBOX == "off":
        return ChannelOff(CHANNEL, "off (THREADLINE_SANDBOX=off)")
    if settings.SLACK_SIGNING_SECRET is None:
        return ChannelOff(
            CHANNEL, "off: it signs with a key derived from SLACK_SIGNING_SECRET, which is not set"
        )
    return SandboxChannel(secret(settings.SLACK_SIGNING_SECRET))
