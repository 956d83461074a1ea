"""The channel port: what a lead channel provides to Threadline (DESIGN §1).

A channel is one package under `channels/` exposing a `ChannelPlugin`; `app/channels.py` lists the
plugins, one line each. Loading a plugin reads its own settings section and yields either a
`ChannelAdapter` (the channel is on) or a `ChannelOff` saying why not.

An adapter provides:
- its inbound entry: `webhooks()` (routes whose `verify` checks the provider's signature on the raw
  bytes) and `pollers()` (long-running readers, such as IMAP); both hand verified raw bodies on;
- `parse(body)`: a verified body into core's `Parsed` values, or `MalformedDelivery`;
- `send(outbound)`: one message out, its failures mapped to core's kinds — `RetryableDelivery` (try again
  later), `PermanentDelivery` (fail with the reason shown), `ChannelBroken` (credentials or account need
  a person; every send would fail the same way);
- `fetch_file(ref)`: the bytes of an inbound attachment (`Attachment.ref`), for the mirror to upload
  into the thread; same failure kinds as `send`;
- `health()`: lines for `threadline check`;
- optionally `templates()` (`OffersTemplates`): a channel with a reply window names the pre-approved
  templates a rep may send once it is closed (the send raised `NeedsTemplate`).
Adapters never touch the database, and nothing here talks HTTP frameworks: requests and answers are
plain values, so an adapter is tested without a server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from core.ports.messages import (
    AccountHealth,
    FetchedFile,
    Outbound,
    Parsed,
    PartSent,
    SendReceipt,
    Template,
    ignore_part,
)


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # case-insensitive, as the web server gives them
    body: bytes


@dataclass(frozen=True)
class Reply:
    """Answer the provider now: a handshake, or a refusal (status ≥ 400, with the reason logged once)."""

    status: int
    body: str = '{"ok": true}'
    content_type: str = "application/json"
    reason: str | None = None  # why a request was refused, for the log line and the metrics


def refuse(status: int, reason: str) -> Reply:
    """A refusal: 401/403 for what fails verification, 400 for a verified body that is malformed."""
    return Reply(status, json.dumps({"ok": False, "error": reason}), reason=reason)


@dataclass(frozen=True)
class Verified:
    """The body came from the provider: store it, then answer 200.

    `key` is the provider's own id for this delivery when it has one (the inbox's dedupe key); without
    one, a digest of the body stands in, which catches a provider's retry of the same body.
    """

    body: bytes
    key: str | None = None


@dataclass(frozen=True)
class Webhook:
    method: Literal["GET", "POST"]
    path: str
    verify: Callable[[WebhookRequest], Reply | Verified]


Accept = Callable[[bytes], Awaitable[None]]  # store one verified raw delivery of a poller's channel


ReportHealth = Callable[[AccountHealth], Awaitable[None]]  # record a poller's word on its own account


@runtime_checkable
class ReportsHealth(Protocol):
    """A poller that knows whether its account works (a mailbox refusing our login). Given a reporter
    before it runs, it reports each change (and that the account works, once it first does): core marks
    the account broken or working as for a provider's health webhook — Slack is told once,
    `threadline check` and /metrics show it."""

    def report_health_to(self, report: ReportHealth) -> None: ...


class Poller(Protocol):
    """A long-running inbound reader (IMAP IDLE…), run by the web process until `stop` is set."""

    name: str

    async def run(self, accept: Accept, stop: asyncio.Event) -> None: ...


@dataclass(frozen=True)
class Health:
    state: Literal["ok", "off", "fail"]
    what: str
    detail: str


class Sender(Protocol):
    """Sends over one channel; raises RetryableDelivery, PermanentDelivery or ChannelBroken."""

    name: str

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        """Send `message` (skipping its first `parts_sent` parts); report each part as it is taken."""
        ...


@runtime_checkable
class NamesMessages(Protocol):
    """A sender that names each message itself, before sending it (email's Message-ID).

    Core asks for the name once, stores it with the message in the transaction that marks it
    `sending`, and passes it in `Outbound.provider_message_id` on every try: a bounce, the lead's
    reply or a retry after a crash all find the message by it, and a mail client that got the first
    try drops a second copy carrying the same name.
    """

    def new_message_id(self) -> str: ...


class ChannelAdapter(Sender, Protocol):
    def webhooks(self) -> Sequence[Webhook]: ...

    def pollers(self) -> Sequence[Poller]: ...

    def parse(self, body: bytes) -> Parsed: ...

    def fetch_file(self, ref: Mapping[str, str]) -> FetchedFile: ...

    def health(self) -> Sequence[Health]: ...


@runtime_checkable
class OffersTemplates(Protocol):
    """A channel whose reply window closes (WhatsApp: 24 hours after the lead last wrote): after that
    only these pre-approved templates go out, sent as `Outbound.template`."""

    def templates(self) -> Sequence[Template]: ...


@dataclass(frozen=True)
class ChannelOff:
    """A channel that is not on, and why: not configured at all, or configured only in part."""

    name: str
    reason: str  # in plain words, saying what to set
    misconfigured: bool = False  # some of its settings are set: probably a mistake, so `run` stops


def unconfigured(name: str, required: Sequence[str], missing: Sequence[str]) -> ChannelOff | None:
    """Why a channel whose settings are all required is not on: none set (off), some set (a likely
    mistake, so `run` stops), or None when all are set."""
    if len(missing) == len(required):
        return ChannelOff(name, f"off: set {', '.join(required)} to turn it on")
    if missing:
        return ChannelOff(name, f"half configured: {', '.join(missing)} not set", misconfigured=True)
    return None


@dataclass(frozen=True)
class ChannelPlugin:
    name: str
    load: Callable[[], ChannelAdapter | ChannelOff]  # reads the channel's settings section
