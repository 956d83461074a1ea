"""App Home: redrawn each time a teammate opens it."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.home import build_home, build_home_for_outsider
from bot.context import BotContext
from bot.payloads import text
from core.errors import ThreadlineError
from core.queries.home import home_summary
from core.queries.lookup import find_member, slack_channels_in_use


async def handle_home_opened(ctx: BotContext, event: dict[str, Any], client: AsyncWebClient) -> None:
    if event.get("tab") != "home":
        return
    user_id = text(event, "user")
    try:
        await ctx.access.user(client, user_id)
    except ThreadlineError as exc:  # guests and apps see no conversation, only why
        await client.views_publish(user_id=user_id, view=build_home_for_outsider(str(exc)))
        return
    in_use = await ctx.read(slack_channels_in_use)
    visible = [channel for channel in in_use if await _in_channel(ctx, client, user_id, channel)]
    summary = await ctx.read(
        lambda session: home_summary(session, find_member(session, user_id), channels=visible)
    )
    await client.views_publish(user_id=user_id, view=build_home(summary))


async def _in_channel(ctx: BotContext, client: AsyncWebClient, user_id: str, channel: str) -> bool:
    try:
        return await ctx.access.in_channel(client, user_id, channel)
    except ThreadlineError:  # a channel Slack will not show us (archived, left): nothing to see there
        return False


def register(app: AsyncApp, ctx: BotContext) -> None:
    async def on_home_opened(event: dict[str, Any]) -> None:
        await handle_home_opened(ctx, event, ctx.client)

    app.event("app_home_opened")(on_home_opened)
