"""The Slack face: a Bolt AsyncApp, served at POST /slack/events (HTTP) or over Socket Mode."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.context import BotContext
from bot.handlers import actions, commands, events, home, views

log = logging.getLogger(__name__)


def build_bolt_app(*, token: str, signing_secret: str, api_url: str, ctx: BotContext) -> AsyncApp:
    app = AsyncApp(
        client=AsyncWebClient(token=token, base_url=api_url),
        signing_secret=signing_secret,
        # The use-cases only write rows (Slack and lead calls go through the outbox), so they finish well
        # inside Slack's 3 s; answering after them means an acknowledged event is already stored.
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("Slack listener failed for %s: %r", body.get("type"), error, exc_info=error)

    events.register(app, ctx)
    actions.register(app, ctx)
    views.register(app, ctx)
    commands.register(app, ctx)
    home.register(app, ctx)
    return app


def slack_events_endpoint(bolt: AsyncApp) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler for POST /slack/events: events, interactivity and slash commands."""

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    return slack_events
