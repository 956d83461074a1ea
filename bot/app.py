"""The Slack face: a Bolt AsyncApp, served at POST /slack/events (HTTP) or over Socket Mode."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.context import BotContext
from bot.edge import database_away
from bot.handlers import actions, ai, commands, events, home, views
from bot.payloads import BadPayload
from core.log_context import log_context

log = logging.getLogger(__name__)


def build_bolt_app(*, signing_secret: str, ctx: BotContext) -> AsyncApp:
    app = _LoggedApp(
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
        if (away := database_away(error)) is not None:  # Slack sends it again: nothing was changed
            return away
        log.error("Slack listener failed for %s: %r", body.get("type"), error, exc_info=error)
        return BoltResponse(status=500, body='{"ok": false, "error": "internal_error"}')

    events.register(app, ctx)
    actions.register(app, ctx)
    ai.register(app, ctx)
    views.register(app, ctx)
    commands.register(app, ctx)
    home.register(app, ctx)
    return app


class _LoggedApp(AsyncApp):
    """Each log line of a Slack request (HTTP or Socket Mode) says what it was: the action, view,
    command or event, and who. (Bolt's middleware `next()` does not wrap the listener, so here.)"""

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        body = req.body if isinstance(req.body, dict) else {}
        with log_context(slack=_what(body), slack_user=_user_of(body)):
            return await super().async_dispatch(req)


def _what(body: dict[str, Any]) -> str | None:
    """`block_actions:take_over`, `view_submission:assign`, `/leads`, `event:app_home_opened`…"""
    kind = body.get("type")
    if isinstance(body.get("command"), str):
        return str(body["command"])[:40]
    actions = body.get("actions")
    if kind == "block_actions" and isinstance(actions, list) and actions and isinstance(actions[0], dict):
        return f"block_actions:{str(actions[0].get('action_id'))[:60]}"
    view = body.get("view")
    if isinstance(view, dict) and view.get("callback_id"):
        return f"{kind}:{str(view['callback_id'])[:60]}"
    event = body.get("event")
    if isinstance(event, dict) and event.get("type"):
        return f"event:{str(event['type'])[:40]}"
    return str(kind)[:40] if kind else None


def _user_of(body: dict[str, Any]) -> str | None:
    user = body.get("user")
    if isinstance(user, dict):
        user = user.get("id")
    if user is None:
        user = body.get("user_id")
    if user is None and isinstance(body.get("event"), dict):
        user = body["event"].get("user")
    return str(user)[:20] if isinstance(user, str) else None
