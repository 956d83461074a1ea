"""The HTTP face: one aiohttp application for Slack, the provider webhooks, health and metrics.

Faces plug their routes in (`Registrar`); this module only knows HTTP, so core stays free of Slack and
provider code. One middleware turns anything unexpected into a logged 500 instead of a traceback page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

Registrar = Callable[[web.Application], None]
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


def build_web_app(registrars: Iterable[Registrar]) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY_BYTES)
    app[READY] = {"ready": False}
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    for register in registrars:
        register(app)
    return app


def mark_ready(app: web.Application) -> None:
    app[READY]["ready"] = True
