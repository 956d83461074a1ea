"""Slack's message events through the inbox: kept raw when Slack sends them, acted on after.

The endpoint only stores the event (one insert, deduplicated on Slack's `event_id`, so a retried
event changes nothing) and acknowledges it at once; Slack never waits on our lookups. The inbox runner
then hands the stored event to `SlackEvents`, which reads who wrote it (Slack's users and members
lists, cached), decides reply or note, and runs the use-case — from a worker, in its own event loop.
"""

from __future__ import annotations

import asyncio
import json

from bot.context import BotContext
from bot.handlers.events import SOURCE, handle_message

__all__ = ["SOURCE", "SlackEvents"]


class SlackEvents:
    """The inbox handler for source "slack": runs one stored message event."""

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx

    def __call__(self, raw: bytes) -> None:
        body = json.loads(raw)
        event = body.get("event") if isinstance(body, dict) else None
        if not isinstance(event, dict):
            raise ValueError("a stored Slack delivery without an event")
        asyncio.run(handle_message(self.ctx, event, body, self.ctx.client))
