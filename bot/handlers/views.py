"""Modal submissions: the Tags modal sets the conversation's tags exactly as chosen."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import ids
from bot.blocks.modals import parse_tags_submission
from bot.context import BotContext
from bot.payloads import BadPayload, row_id, submission
from core.actions.conversation import do_set_tags
from core.errors import NotFound, ThreadlineError
from core.models import Conversation


async def handle_tags_submission(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
) -> None:
    submitted = submission(body, view)
    conversation_id = row_id(submitted.private_metadata, "the Tags modal's private_metadata")
    try:
        names = parse_tags_submission(submitted.values)
    except ValueError as exc:
        raise BadPayload(f"Tags modal: {exc}") from exc
    try:
        conversation = await ctx.read(lambda session: session.get(Conversation, conversation_id))
        if conversation is None or conversation.slack_channel is None:
            raise NotFound("This conversation no longer exists.")
        actor = await ctx.actor(client, submitted.user_id, conversation.slack_channel)
        await ctx.run(lambda session: do_set_tags(session, conversation_id, names, actor=actor))
    except ThreadlineError as exc:
        await ack(response_action="errors", errors={ids.NEW_TAGS_BLOCK: f"Not saved: {exc}"})
        return
    await ack()


def register(app: AsyncApp, ctx: BotContext) -> None:
    async def on_tags(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await handle_tags_submission(ctx, ack, body, view, ctx.client)

    app.view(ids.TAGS_MODAL)(on_tags)
