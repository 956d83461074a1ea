"""Prometheus metrics, served at GET /metrics (prometheus_client keeps the registry).

These are counters of this process: the web process counts webhooks; whoever runs the work (the web
process in the embedded runtime, each Celery worker in the distributed one, which serves them on
THREADLINE_WORKER_METRICS_PORT) counts jobs, sends, and calls to Slack and the providers. What is in
the database — backlogs, deliveries by status, connections — app.web reads at scrape time instead.
docs/operations.md lists every metric and what to alert on.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from prometheus_client import Counter, Histogram

from core.errors import ChannelBroken, PermanentDelivery, RetryableDelivery

# Calls to Slack and the providers: most answer in tens of milliseconds, a slow one in seconds.
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

INBOUND = Counter(
    "threadline_inbound_messages_total",
    "Lead messages received, by channel and outcome",
    ["channel", "outcome"],
)
OUTBOUND = Counter(
    "threadline_outbound_messages_total",
    "Replies handed to a lead's channel, by channel and outcome "
    "(sent, retry, failed, held: the channel is broken, needs_template)",
    ["channel", "outcome"],
)
WEBHOOK_ACCEPTED = Counter(
    "threadline_webhooks_accepted_total",
    "Verified provider deliveries stored in the inbox by this web process, by source",
    ["source"],
)
WEBHOOK_REJECTED = Counter(
    "threadline_webhook_rejected_total",
    "Provider webhooks refused, by provider and reason",
    ["provider", "reason"],
)
OUTBOX_JOBS = Counter(
    "threadline_outbox_jobs_total", "Outbox jobs run, by kind and outcome", ["kind", "outcome"]
)
OUTBOX_SECONDS = Histogram("threadline_outbox_job_seconds", "Time to run one outbox job", ["kind"])
INBOX_PARKED = Counter(
    "threadline_inbox_parked_total",
    "Inbound deliveries parked because they could not be processed",
    ["source"],
)
SLACK_SECONDS = Histogram(
    "threadline_slack_api_call_seconds",
    "Slack Web API calls, by method, until Slack's answer",
    ["method"],
    buckets=CALL_BUCKETS,
)
SLACK_ERRORS = Counter(
    "threadline_slack_api_errors_total",
    "Slack Web API calls that failed, by method and error "
    "(Slack's error code, ratelimited, server_error, timeout, unreachable)",
    ["method", "error"],
)
PROVIDER_SECONDS = Histogram(
    "threadline_provider_call_seconds",
    "Calls to a lead channel's provider or the model server (graph, smtp, unipile, openai), until its answer",
    ["provider"],
    buckets=CALL_BUCKETS,
)
PROVIDER_ERRORS = Counter(
    "threadline_provider_errors_total",
    "Provider calls that failed, by provider and error "
    "(timeout, unreachable, ratelimited, server_error, unauthorized, refused, temporary, broken)",
    ["provider", "error"],
)
RATE_LIMIT_WAITS = Counter(
    "threadline_rate_limit_waits_total",
    "Work put off by a rate limit, by service and kind "
    "(pace: our own token bucket; retry_after: the service answered 429 or said when to come back)",
    ["service", "kind"],
)
RATE_LIMIT_SECONDS = Counter(
    "threadline_rate_limit_wait_seconds_total",
    "Seconds of work put off by a rate limit, by service and kind",
    ["service", "kind"],
)


def rate_limited(service: str, kind: str, seconds: float) -> None:
    RATE_LIMIT_WAITS.labels(service, kind).inc()
    RATE_LIMIT_SECONDS.labels(service, kind).inc(max(0.0, seconds))


# --- provider calls ------------------------------------------------------------------------------------


class ProviderCall:
    """One call in progress: an HTTP answer that is an error is counted through `answered`."""

    def __init__(self, provider: str) -> None:
        self.provider = provider

    def answered(self, status: int) -> None:
        kind = status_kind(status)
        if kind is not None:
            PROVIDER_ERRORS.labels(self.provider, kind).inc()


@contextmanager
def provider_call(provider: str) -> Iterator[ProviderCall]:
    """Time the block as one call to `provider`; an exception out of it is counted by its kind."""
    started = time.perf_counter()
    try:
        yield ProviderCall(provider)
    except Exception as exc:
        PROVIDER_ERRORS.labels(provider, error_kind(exc)).inc()
        raise
    finally:
        PROVIDER_SECONDS.labels(provider).observe(time.perf_counter() - started)


@asynccontextmanager
async def async_provider_call(provider: str) -> AsyncIterator[ProviderCall]:
    with provider_call(provider) as call:
        yield call


def status_kind(status: int) -> str | None:
    """An HTTP status as an error kind; None for a success (or a redirect)."""
    if status == 429:
        return "ratelimited"
    if status in (401, 403):
        return "unauthorized"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "refused"
    return None


def error_kind(exc: BaseException) -> str:
    """What went wrong, in a few words an alert can name: judged by the first exception raised (a
    channel's own error wraps the socket's or the server's), then by the one that came out."""
    first, seen = exc, 0
    while first.__context__ is not None and seen < 10:
        first, seen = first.__context__, seen + 1
    return _kind(first) or _kind(exc) or "error"


def _kind(exc: BaseException) -> str | None:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "unauthorized"
    if isinstance(exc, smtplib.SMTPResponseException):
        return "refused" if exc.smtp_code >= 500 else "temporary"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "refused"
    if isinstance(exc, OSError | httpx.TransportError):  # refused, reset, TLS, DNS; SMTPException too
        return "unreachable"
    if "Timeout" in type(exc).__name__:  # other HTTP clients' timeouts (the openai package's)
        return "timeout"
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status_kind(status) is not None:  # an HTTP error raised (openai's)
        return status_kind(status)
    if "Connection" in type(exc).__name__:
        return "unreachable"
    if isinstance(exc, ChannelBroken):
        return "broken"
    if isinstance(exc, RetryableDelivery):
        return "ratelimited" if exc.retry_after is not None else "temporary"
    if isinstance(exc, PermanentDelivery):
        return "refused"
    return None


class MeteredClient(httpx.Client):
    """An httpx client that times each request to `provider` and counts its failures (a subclass, not
    a transport, so the environment's proxy settings still apply)."""

    def __init__(self, provider: str, **options: Any) -> None:
        super().__init__(**options)
        self.provider = provider

    def send(self, request: httpx.Request, **options: Any) -> httpx.Response:
        with provider_call(self.provider) as call:
            response = super().send(request, **options)
            call.answered(response.status_code)
        return response


class AsyncMeteredClient(httpx.AsyncClient):
    def __init__(self, provider: str, **options: Any) -> None:
        super().__init__(**options)
        self.provider = provider

    async def send(self, request: httpx.Request, **options: Any) -> httpx.Response:
        async with async_provider_call(self.provider) as call:
            response = await super().send(request, **options)
            call.answered(response.status_code)
        return response
