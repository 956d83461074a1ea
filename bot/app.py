"""The Slack face: a Bolt AsyncApp, served at POST /slack/events (HTTP) or over Socket Mode."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.context import BotContext
from bot.handlers import actions, ai, commands, events, home, views
from bot.payloads import BadPayload

log = logging.getLogger(__name__)


def build_bolt_app(*, signing_secret: str, ctx: BotContext) -> AsyncApp:
    app = AsyncApp(
        client=ctx.client,
        signing_secret=signing_secret,
        # Handlers answer after their use-case ran (an acknowledged event is then already stored). They
        # stay well inside Slack's 3 s: the use-cases only write rows (Slack and lead calls go through
        # the outbox), and who-may-act answers are cached (one users.info and one members page, cold).
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        if isinstance(error, BadPayload):  # signed by Slack, yet not shaped as Slack shapes it
            log.warning("Slack %s refused (400): %s", body.get("type"), error)
            return BoltResponse(status=400, body='{"ok": false, "error": "malformed payload"}')
        log.error("Slack listener failed for %s: %r", body.get("type"), error, exc_info=error)
        return BoltResponse(status=500, body='{"ok": false, "error": "internal_error"}')

    events.register(app, ctx)
    actions.register(app, ctx)
    ai.register(app, ctx)
    views.register(app, ctx)
    commands.register(app, ctx)
    home.register(app, ctx)
    return app
