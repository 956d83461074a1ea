"""The HTTP face, assembled: Slack's endpoint, the channels' webhooks, health and metrics.

Channel webhooks are plain-value functions (core.ports); this module turns them into aiohttp routes,
with the one body-size limit, the one log line and metric per refused request, and the inbox:
a verified delivery is stored raw (one insert) before the provider gets its 200, and parsed later.
One middleware turns a database outage into a 503 (so the provider retries) and anything else
unexpected into a logged 500 instead of a traceback page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from functools import partial
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from app.container import Container
from bot.app import build_bolt_app
from bot.edge import slack_events_endpoint
from bot.handlers.events import keep_message_event
from core.db import Database
from core.metrics import WEBHOOK_ACCEPTED, WEBHOOK_REJECTED
from core.models import AIOutcome, utcnow
from core.ports import ChannelAdapter, Reply, Webhook, WebhookRequest
from core.queries.ai_stats import AIStats, ai_stats
from core.queries.operations import work_summary
from core.settings import secret

log = logging.getLogger(__name__)

READY = web.AppKey("ready", dict)
MAX_BODY_BYTES = 1_048_576  # no provider sends us more than this in one request
AI_LATENCY_WINDOW = timedelta(hours=24)  # the AI latency /metrics shows
_REJECTED = {400: "malformed", 401: "signature", 403: "verification", 413: "too_large"}

AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: AiohttpHandler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (OperationalError, InterfaceError) as exc:
        # The database is away (restart, failover): nothing was kept, so the provider must send again.
        # A 503 makes Meta, Unipile and Slack retry; one line, no traceback, the cause without its URL.
        log.warning(
            "%s %s answered 503: database unavailable (%s)",
            request.method,
            request.path,
            type(exc.orig).__name__,
        )
        return web.json_response(
            {"ok": False, "error": "database_unavailable"}, status=503, headers={"Retry-After": "5"}
        )
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"ok": False, "error": "internal_error"}, status=500)


async def _healthz(request: web.Request) -> web.Response:
    if not request.app[READY].get("ready"):
        return web.json_response({"ok": False, "status": "starting"}, status=503)
    return web.json_response({"ok": True})


def _metrics(db: Database) -> AiohttpHandler:
    async def metrics(_request: web.Request) -> web.Response:
        work = await asyncio.to_thread(_work_metrics, db)
        return web.Response(body=generate_latest() + work, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics


def _work_metrics(db: Database) -> bytes:
    """Gauges read from the database at scrape time: the same numbers whichever process is asked."""
    try:
        with db.sessions() as session:
            summary = work_summary(session)
            ai_total = ai_stats(session, since=None)
            ai_recent = ai_stats(session, since=utcnow() - AI_LATENCY_WINDOW)
    except DBAPIError:
        return b""  # the database is away; the counters above still answer
    families: list[Metric] = []
    inbox = GaugeMetricFamily(
        "threadline_inbox_deliveries", "Inbound deliveries not done, by status", labels=["status"]
    )
    for status in ("new", "running", "parked"):
        inbox.add_metric([status], summary.inbox.get(status, 0))
    outbox = GaugeMetricFamily(
        "threadline_outbox_items", "Outbox work not done, by status", labels=["status"]
    )
    for status in ("pending", "running", "failed"):
        outbox.add_metric([status], summary.outbox.get(status, 0))
    families += [
        inbox,
        outbox,
        GaugeMetricFamily(
            "threadline_inbox_oldest_seconds",
            "Age of the oldest delivery waiting",
            value=summary.inbox_oldest_seconds,
        ),
        GaugeMetricFamily(
            "threadline_outbox_oldest_due_seconds",
            "How long the oldest due outbox item has waited",
            value=summary.outbox_oldest_seconds,
        ),
    ]
    messages = GaugeMetricFamily(
        "threadline_messages_stored",
        "Messages stored, by lead channel and direction (inbound, outbound, note)",
        labels=["channel", "direction"],
    )
    for (channel, direction), count in sorted(summary.messages.items()):
        messages.add_metric([channel, direction], count)
    families.append(messages)
    deliveries = GaugeMetricFamily(
        "threadline_deliveries",
        "Replies to leads stored, by lead channel and delivery status (queued, sending, sent, delivered, "
        "read, failed)",
        labels=["channel", "status"],
    )
    for (channel, status), count in sorted(summary.deliveries.items()):
        deliveries.add_metric([channel, status], count)
    families.append(deliveries)
    health = GaugeMetricFamily(
        "threadline_connection_broken", "1 when a connection needs a person", labels=["channel", "account"]
    )
    broken_since = GaugeMetricFamily(
        "threadline_connection_broken_since_seconds",
        "Unix time a broken connection broke (absent while it works)",
        labels=["channel", "account"],
    )
    last_message = GaugeMetricFamily(
        "threadline_connection_last_message_seconds",
        "Unix time a lead channel's account last received a lead's message",
        labels=["channel", "account"],
    )
    for connection in summary.connections:
        labels = [connection.channel, connection.account]
        health.add_metric(labels, 1 if connection.broken else 0)
        if connection.broken and connection.since is not None:
            broken_since.add_metric(labels, connection.since.timestamp())
        if connection.last_message_at is not None:
            last_message.add_metric(labels, connection.last_message_at.timestamp())
    families += [health, broken_since, last_message, *_ai_metrics(ai_total, ai_recent)]
    registry = CollectorRegistry()
    registry.register(_Fixed(families))
    return generate_latest(registry)


def _ai_metrics(total: AIStats, recent: AIStats) -> list[Metric]:
    """The AI's turns as stored: by outcome, tokens used, and decision latency over the last day."""
    decisions = GaugeMetricFamily(
        "threadline_ai_decisions", "AI turns stored, by outcome", labels=["outcome"]
    )
    for outcome in AIOutcome:
        decisions.add_metric([outcome.value], total.outcomes.get(outcome.value, 0))
    tokens = GaugeMetricFamily(
        "threadline_ai_tokens", "Model tokens used by AI turns, by kind (prompt, completion)", labels=["kind"]
    )
    tokens.add_metric(["prompt"], total.prompt_tokens)
    tokens.add_metric(["completion"], total.completion_tokens)
    latency = GaugeMetricFamily(
        "threadline_ai_decision_latency_seconds",
        "Time the model took to decide an AI turn, over the last 24 hours, by quantile",
        labels=["quantile"],
    )
    for quantile, value in (("0.5", recent.latency_p50_ms), ("0.95", recent.latency_p95_ms)):
        if value is not None:
            latency.add_metric([quantile], value / 1000)
    return [decisions, tokens, latency]


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def build_web(container: Container) -> tuple[web.Application, Any]:
    """The aiohttp app with every route, and the Bolt app behind /slack/events."""
    settings = container.settings
    bolt = build_bolt_app(
        signing_secret=secret(settings.SLACK_SIGNING_SECRET),
        ctx=container.bot,
    )
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY_BYTES)
    app[READY] = {"ready": False}
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics(container.db))
    app.router.add_post(
        "/slack/events",
        _limited(
            slack_events_endpoint(
                bolt,
                signing_secret=secret(settings.SLACK_SIGNING_SECRET),
                keep_message=partial(keep_message_event, container.bot),
            )
        ),
    )
    # A channel that is off has no routes: its webhook answers 404, aiohttp's default.
    for adapter in container.channels.on.values():
        for webhook in adapter.webhooks():
            app.router.add_route(
                webhook.method, webhook.path, _webhook_route(adapter, webhook, container.accept)
            )
    return app, bolt


def mark_ready(app: web.Application) -> None:
    app[READY]["ready"] = True


def _limited(
    handle: Callable[[web.Request, bytes], Awaitable[web.StreamResponse]], *, name: str = "Slack"
) -> AiohttpHandler:
    """Read the body within the one size limit, then hand it on; a larger body is a 413."""

    async def read_then_handle(request: web.Request) -> web.StreamResponse:
        body = await read_limited(request, MAX_BODY_BYTES)
        if body is None:
            log.warning("%s request refused (413): body larger than %d bytes", name, MAX_BODY_BYTES)
            WEBHOOK_REJECTED.labels(name.lower(), "too_large").inc()
            return web.json_response({"ok": False, "error": "body too large"}, status=413)
        return await handle(request, body)

    return read_then_handle


def _webhook_route(
    adapter: ChannelAdapter, webhook: Webhook, accept: Callable[[str, bytes, str | None], None]
) -> AiohttpHandler:
    async def handle(request: web.Request, body: bytes) -> web.StreamResponse:
        verdict = webhook.verify(
            WebhookRequest(request.method, request.path, request.query, request.headers, body)
        )
        if isinstance(verdict, Reply):
            return _answer(adapter, verdict)
        # Stored before we answer: a 200 promises the provider we have it.
        await asyncio.to_thread(accept, adapter.name, verdict.body, verdict.key)
        WEBHOOK_ACCEPTED.labels(adapter.name).inc()
        return web.json_response({"ok": True})

    return _limited(handle, name=adapter.name)


def _answer(adapter: ChannelAdapter, reply: Reply) -> web.Response:
    if reply.reason is not None:
        log.warning("%s webhook refused (%d): %s", adapter.name, reply.status, reply.reason[:300])
        WEBHOOK_REJECTED.labels(adapter.name, _REJECTED.get(reply.status, str(reply.status))).inc()
    return web.Response(status=reply.status, text=reply.body, content_type=reply.content_type)


async def read_limited(request: web.Request, limit: int) -> bytes | None:
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
