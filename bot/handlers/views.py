"""Modal submissions: the Tags modal sets the conversation's tags exactly as chosen."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import ids
from bot.blocks.modals import parse_tags_submission
from bot.context import BotContext
from core.actions.conversation import do_set_tags
from core.errors import ThreadlineError


async def handle_tags_submission(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
) -> None:
    try:
        conversation_id = int(view["private_metadata"])
        names = parse_tags_submission(view["state"]["values"])
        actor = await ctx.actor(client, body["user"]["id"])
        await ctx.run(lambda session: do_set_tags(session, conversation_id, names, actor=actor))
    except (ValueError, ThreadlineError) as exc:
        await ack(response_action="errors", errors={ids.NEW_TAGS_BLOCK: f"Could not save tags: {exc}"})
        return
    await ack()


def register(app: AsyncApp, ctx: BotContext) -> None:
    async def on_tags(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await handle_tags_submission(ctx, ack, body, view, client)

    app.view(ids.TAGS_MODAL)(on_tags)
