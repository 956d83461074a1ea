"""The LinkedIn adapter: the channel port (core.ports) over Unipile's webhooks and API."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence

import httpx

from channels.linkedin.inbound import CHANNEL, delivery_key, parse_webhook, shape_problem, verify_secret
from channels.linkedin.outbound import UnipileClient, json_of, unipile_error
from channels.linkedin.settings import REQUIRED, LinkedInSettings
from core.errors import Deferred, DeliveryError, PermanentDelivery
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
    Verified,
    Webhook,
    WebhookRequest,
    ignore_part,
    refuse,
    unconfigured,
)
from core.settings import secret

PATH = "/webhooks/linkedin"
SECRET_HEADER = "X-Unipile-Secret"  # noqa: S105 (a header's name)
OWN_ID_RETRY_SECONDS = 30.0  # a message waits this long when Unipile cannot say who we are yet


class LinkedInChannel:
    name = CHANNEL

    def __init__(self, settings: LinkedInSettings, *, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.account_id = settings.UNIPILE_ACCOUNT_ID or ""
        # Files up to MAX_FILE_BYTES go up in one request: writing may take longer than an answer.
        self._client = client or MeteredClient("unipile", timeout=httpx.Timeout(30.0, write=120.0))
        self.unipile = UnipileClient(
            api_url=settings.UNIPILE_API_URL or "",
            api_key=secret(settings.UNIPILE_API_KEY),
            account_id=self.account_id,
            client=self._client,
        )
        self._own_id: str | None = None  # our LinkedIn member id: it never changes for an account
        self._own_id_lock = threading.Lock()

    # --- inbound -------------------------------------------------------------------------------------

    def webhooks(self) -> Sequence[Webhook]:
        return [Webhook("POST", PATH, self._receive)]

    def pollers(self) -> Sequence[Poller]:
        return []

    def _receive(self, request: WebhookRequest) -> Reply | Verified:
        expected = secret(self.settings.UNIPILE_WEBHOOK_SECRET)
        if not verify_secret(expected, request.headers.get(SECRET_HEADER)):
            return refuse(401, f"bad or missing {SECRET_HEADER}")
        problem = shape_problem(request.body)
        if problem is not None:
            return refuse(400, problem)
        # An account status has no id of its own and may rightly come twice: a key of its own each time.
        key = delivery_key(request.body) or f"delivery:{time.time_ns()}:{uuid.uuid4().hex}"
        return Verified(request.body, key=key)

    def parse(self, body: bytes) -> Parsed:
        return parse_webhook(body, account_id=self.account_id, own_id=self.own_provider_id)

    def own_provider_id(self) -> str:
        """Our account's LinkedIn member id, asked of Unipile once; `Deferred` while it cannot say."""
        with self._own_id_lock:
            if self._own_id is None:
                try:
                    self._own_id = self.unipile.own_provider_id()
                except (httpx.HTTPError, DeliveryError) as exc:
                    reason = getattr(exc, "reason", None) or type(exc).__name__
                    raise Deferred(
                        OWN_ID_RETRY_SECONDS, f"Unipile did not say which LinkedIn member we are: {reason}"
                    ) from exc
            return self._own_id

    # --- outbound ------------------------------------------------------------------------------------

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        return self.unipile.send(message)

    def fetch_file(self, ref: Mapping[str, str]) -> FetchedFile:
        try:
            message_id, attachment_id = ref["message_id"], ref["attachment_id"]
        except KeyError as exc:
            raise PermanentDelivery(f"not a LinkedIn attachment: no {exc.args[0]}") from exc
        return self.unipile.attachment(
            message_id,
            attachment_id,
            name=ref.get("name") or "file",
            mime_type=ref.get("mime_type") or "application/octet-stream",
        )

    # --- health --------------------------------------------------------------------------------------

    def health(self) -> Sequence[Health]:
        """Ask Unipile about our account with our key: proves the URL, the key and the account id."""
        api_url = self.unipile.api_url
        try:
            response = self.unipile.account()
        except httpx.HTTPError as exc:
            return [Health("fail", "linkedin", f"{api_url} unreachable: {exc or type(exc).__name__}")]
        if not response.is_success:
            return [
                Health("fail", "linkedin", unipile_error(response, "did not describe the account").reason)
            ]
        account = json_of(response)
        name = account.get("name") or self.account_id
        sources = account.get("sources")
        statuses = {
            str(source.get("status"))
            for source in (sources if isinstance(sources, list) else [])
            if isinstance(source, dict) and source.get("status")
        }
        not_ok = sorted(statuses - {"OK"})
        if not_ok:
            detail = f"account {name}: Unipile says {', '.join(not_ok)}; reconnect it in Unipile"
            return [Health("fail", "linkedin", detail)]
        return [
            Health("ok", "linkedin", f"account {name} connected; key accepted by {api_url}"),
            Health(
                "ok",
                "linkedin webhook",
                f"point Unipile's messaging and account-status webhooks at https://<this server>{PATH} "
                f"with an {SECRET_HEADER} header",
            ),
        ]


def load() -> LinkedInChannel | ChannelOff:
    settings = LinkedInSettings.load()
    return unconfigured(CHANNEL, REQUIRED, settings.missing()) or LinkedInChannel(settings)
