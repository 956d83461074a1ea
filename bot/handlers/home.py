"""App Home: redrawn each time a teammate opens it."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.home import build_home
from bot.context import BotContext
from bot.payloads import text
from core.queries.home import home_summary
from core.queries.lookup import find_member


async def handle_home_opened(ctx: BotContext, event: dict[str, Any], client: AsyncWebClient) -> None:
    if event.get("tab") != "home":
        return
    user_id = text(event, "user")
    summary = await ctx.read(lambda session: home_summary(session, find_member(session, user_id)))
    await client.views_publish(user_id=user_id, view=build_home(summary))


def register(app: AsyncApp, ctx: BotContext) -> None:
    async def on_home_opened(event: dict[str, Any]) -> None:
        await handle_home_opened(ctx, event, ctx.client)

    app.event("app_home_opened")(on_home_opened)
