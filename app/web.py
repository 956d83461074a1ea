"""The HTTP face, assembled: Slack's endpoint, the channels' webhooks, health and metrics.

One middleware turns anything unexpected into a logged 500 instead of a traceback page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.container import Container, InboundSink, _secret
from bot.app import build_bolt_app, slack_events_endpoint
from bot.context import BotContext

log = logging.getLogger(__name__)

READY = web.AppKey("ready", dict)
MAX_BODY_BYTES = 1_048_576  # no provider sends us more than this in one request


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"ok": False, "error": "internal_error"}, status=500)


async def _healthz(request: web.Request) -> web.Response:
    if not request.app[READY].get("ready"):
        return web.json_response({"ok": False, "status": "starting"}, status=503)
    return web.json_response({"ok": True})


async def _metrics(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_web(container: Container) -> tuple[web.Application, Any]:
    """The aiohttp app with every route, and the Bolt app behind /slack/events."""
    settings = container.settings
    bolt = build_bolt_app(
        token=_secret(settings.SLACK_BOT_TOKEN),
        signing_secret=_secret(settings.SLACK_SIGNING_SECRET),
        api_url=settings.SLACK_API_URL,
        ctx=BotContext(db=container.db, ai_available=container.ai_available),
    )
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY_BYTES)
    app[READY] = {"ready": False}
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_post("/slack/events", slack_events_endpoint(bolt))
    # A channel that is not configured answers 404 on its webhook: aiohttp's default for an unknown route.
    if settings.whatsapp_enabled:
        from channels import whatsapp

        whatsapp.register_routes(
            app,
            sink=InboundSink(container.db, ai_available=container.ai_available),
            app_secret=_secret(settings.WHATSAPP_APP_SECRET),
            verify_token=_secret(settings.WHATSAPP_VERIFY_TOKEN),
        )
    return app, bolt


def mark_ready(app: web.Application) -> None:
    app[READY]["ready"] = True
