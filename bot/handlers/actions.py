"""Card buttons and the Retry button: ack at once, run one use-case, let the mirror redraw the card."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.blocks import ids
from bot.blocks.modals import build_lead_modal, build_tags_modal
from bot.context import BotContext, tell
from core.actions.common import Actor, Changed
from core.actions.conversation import (
    do_assign,
    do_close,
    do_reopen,
    do_resume_ai,
    do_set_manual,
    do_take_over,
)
from core.actions.replies import do_retry_delivery
from core.errors import NotFound, ThreadlineError
from core.models import Conversation, Tag
from core.queries.lookup import conversation_for_thread

log = logging.getLogger(__name__)

UseCase = Callable[[Session, int, Actor], Changed]


def _card_use_cases(ctx: BotContext) -> dict[str, UseCase]:
    return {
        ids.TAKE_OVER: lambda s, cid, actor: do_take_over(s, cid, actor=actor),
        ids.RESUME_AI: lambda s, cid, actor: do_resume_ai(s, cid, actor=actor, ai_available=ctx.ai_available),
        ids.MANUAL_ONLY: lambda s, cid, actor: do_set_manual(s, cid, actor=actor),
        ids.CLOSE: lambda s, cid, actor: do_close(s, cid, actor=actor),
        ids.REOPEN: lambda s, cid, actor: do_reopen(s, cid, actor=actor),
    }


async def _card_conversation(ctx: BotContext, body: dict[str, Any]) -> Conversation:
    """The conversation whose card was clicked: the card is the thread's first message."""
    channel = body["channel"]["id"]
    card_ts = body["container"].get("thread_ts") or body["container"]["message_ts"]
    conversation = await ctx.read(lambda session: conversation_for_thread(session, channel, card_ts))
    if conversation is None:
        raise NotFound("This card no longer belongs to a Threadline conversation.")
    return conversation


async def _tell(client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
    container = body.get("container") or {}
    thread_ts = container.get("thread_ts") or container.get("message_ts")
    await tell(client, channel=body["channel"]["id"], user=body["user"]["id"], thread_ts=thread_ts, text=text)


async def handle_card_button(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    await ack()
    use_case = _card_use_cases(ctx)[action["action_id"]]
    try:
        conversation = await _card_conversation(ctx, body)
        actor = await ctx.actor(client, body["user"]["id"])
        await ctx.run(lambda session: use_case(session, conversation.id, actor))
    except ThreadlineError as exc:
        await _tell(client, body, str(exc))


async def handle_assign(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    await ack()
    try:
        conversation = await _card_conversation(ctx, body)
        actor = await ctx.actor(client, body["user"]["id"])
        selected = action.get("selected_user")
        assignee = await ctx.member(client, selected) if selected else None
        assignee_id = assignee.id if assignee else None
        await ctx.run(lambda session: do_assign(session, conversation.id, assignee_id, actor=actor))
    except ThreadlineError as exc:
        await _tell(client, body, str(exc))


async def handle_open_tags(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
) -> None:
    await ack()
    try:
        conversation = await _card_conversation(ctx, body)
        all_tags = await ctx.read(lambda session: list(session.scalars(select(Tag.name).order_by(Tag.name))))
    except ThreadlineError as exc:
        await _tell(client, body, str(exc))
        return
    await client.views_open(trigger_id=body["trigger_id"], view=build_tags_modal(conversation, all_tags))


async def handle_view_lead(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
) -> None:
    await ack()
    try:
        conversation = await _card_conversation(ctx, body)
    except ThreadlineError as exc:
        await _tell(client, body, str(exc))
        return
    await client.views_open(trigger_id=body["trigger_id"], view=build_lead_modal(conversation))


async def handle_retry_delivery(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    await ack()
    try:
        message_id = int(action["value"])
        actor = await ctx.actor(client, body["user"]["id"])
        result = await ctx.run(lambda session: do_retry_delivery(session, message_id, actor=actor))
    except (ValueError, ThreadlineError) as exc:
        await _tell(client, body, f"Could not retry: {exc}")
        return
    if not result.changed:
        await _tell(client, body, "That message is no longer failed; nothing to retry.")


def register(app: AsyncApp, ctx: BotContext) -> None:
    def bind(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def listener(
            ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
        ) -> None:
            await handler(ctx, ack=ack, body=body, action=action, client=client)

        return listener

    def bind_no_action(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def listener(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
            await handler(ctx, ack=ack, body=body, client=client)

        return listener

    for action_id in _card_use_cases(ctx):
        app.action(action_id)(bind(handle_card_button))
    app.action(ids.ASSIGN)(bind(handle_assign))
    app.action(ids.EDIT_TAGS)(bind_no_action(handle_open_tags))
    app.action(ids.VIEW_LEAD)(bind_no_action(handle_view_lead))
    app.action(ids.RETRY_DELIVERY)(bind(handle_retry_delivery))
