"""Card buttons and the Retry button: ack at once, check who clicked, run one use-case; the mirror
redraws the card. Tags, View lead and Edit lead open a modal instead."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.orm import Session

from bot.blocks import ids
from bot.blocks.modals import build_edit_lead_modal, build_lead_modal, build_tags_modal
from bot.blocks.thread import build_full_message_modal, sender_label
from bot.context import BotContext, tell
from bot.payloads import BadPayload, Click, click, optional_text, row_id, template_choice, text
from core.actions.common import Actor, Changed
from core.actions.conversation import (
    do_assign,
    do_close,
    do_reopen,
    do_resume_ai,
    do_set_manual,
    do_take_over,
)
from core.actions.replies import do_retry_delivery, do_send_template
from core.errors import NotFound, ThreadlineError
from core.models import Conversation, Message
from core.queries.lead import lead_channels, lead_view
from core.queries.lookup import conversation_for_thread, tag_names

log = logging.getLogger(__name__)

UseCase = Callable[[Session, int, Actor], Changed]
TOO_SLOW = "Slack gave up waiting for that window to open: please click again."
STALE_TRIGGER = {"expired_trigger_id", "exchanged_trigger_id", "invalid_trigger_id"}


def _card_use_cases(ctx: BotContext) -> dict[str, UseCase]:
    return {
        ids.TAKE_OVER: lambda s, cid, actor: do_take_over(s, cid, actor=actor),
        ids.RESUME_AI: lambda s, cid, actor: do_resume_ai(s, cid, actor=actor, ai_available=ctx.ai_available),
        ids.MANUAL_ONLY: lambda s, cid, actor: do_set_manual(s, cid, actor=actor),
        ids.CLOSE: lambda s, cid, actor: do_close(s, cid, actor=actor, ask_rating=ctx.csat),
        ids.REOPEN: lambda s, cid, actor: do_reopen(s, cid, actor=actor),
    }


async def _card(ctx: BotContext, clicked: Click) -> Conversation:
    """The conversation whose card was clicked: the card is the thread's first message."""
    conversation = await ctx.read(
        lambda session: conversation_for_thread(session, clicked.channel, clicked.thread_ts)
    )
    if conversation is None:
        raise NotFound("This card no longer belongs to a Threadline conversation.")
    return conversation


async def _acting_on_card(
    ctx: BotContext, client: AsyncWebClient, clicked: Click
) -> tuple[Conversation, Actor]:
    conversation = await _card(ctx, clicked)
    return conversation, await ctx.actor(client, clicked.user_id, clicked.channel)


async def _tell(client: AsyncWebClient, clicked: Click, text: str) -> None:
    await tell(client, channel=clicked.channel, user=clicked.user_id, thread_ts=clicked.thread_ts, text=text)


async def handle_card_button(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    await ack()
    clicked = click(body, action)
    use_case = _card_use_cases(ctx)[clicked.action_id]
    try:
        conversation, actor = await _acting_on_card(ctx, client, clicked)
        await ctx.run(lambda session: use_case(session, conversation.id, actor))
    except ThreadlineError as exc:
        await _tell(client, clicked, str(exc))


async def handle_assign(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    await ack()
    clicked = click(body, action)
    try:
        conversation, actor = await _acting_on_card(ctx, client, clicked)
        assignee_id = None
        if clicked.selected_user:
            # Only someone who may act on the conversation can be given it.
            assignee = await ctx.member(client, clicked.selected_user, clicked.channel)
            assignee_id = assignee.id
        await ctx.run(lambda session: do_assign(session, conversation.id, assignee_id, actor=actor))
    except ThreadlineError as exc:
        await _tell(client, clicked, f"Not assigned: {exc}")


async def handle_open_tags(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    await ack()
    clicked = click(body, action)
    try:
        conversation, _actor = await _acting_on_card(ctx, client, clicked)
        all_tags = await ctx.read(tag_names)
    except ThreadlineError as exc:
        await _tell(client, clicked, str(exc))
        return
    await _open_modal(client, clicked, build_tags_modal(conversation, all_tags))


class WorkspaceUrl:
    """The workspace's address (auth.test, asked once), to link threads without a call per link."""

    def __init__(self) -> None:
        self._url: str | None = None

    async def get(self, client: AsyncWebClient) -> str | None:
        if self._url is None:
            try:
                url = (await client.auth_test()).get("url")
            except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("links to threads left out: auth.test failed (%s)", type(exc).__name__)
                return None  # the links are a convenience; the next view asks again
            self._url = url if isinstance(url, str) and url.startswith("https://") else None
        return self._url


async def handle_view_lead(
    ctx: BotContext,
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    *,
    workspace: WorkspaceUrl,
) -> None:
    await ack()
    clicked = click(body, action)
    try:
        conversation, _actor = await _acting_on_card(ctx, client, clicked)
        # The lead's conversations in channels the reader is not in stay out of what they see.
        channels = await ctx.read(lambda session: lead_channels(session, conversation.id))
        visible = [c for c in channels if await ctx.access.in_channel(client, clicked.user_id, c)]
        view = await ctx.read(lambda session: lead_view(session, conversation.id, channels=visible))
    except ThreadlineError as exc:
        await _tell(client, clicked, str(exc))
        return
    await _open_modal(client, clicked, build_lead_modal(view, workspace_url=await workspace.get(client)))


async def handle_edit_lead(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    await ack()
    clicked = click(body, action)
    try:
        conversation, _actor = await _acting_on_card(ctx, client, clicked)
    except ThreadlineError as exc:
        await _tell(client, clicked, str(exc))
        return
    await _open_modal(client, clicked, build_edit_lead_modal(conversation))


async def handle_edit_lead_from_view(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    """View lead's own Edit lead button: the form opens on top of View lead (views.push)."""
    await ack()
    user_id, trigger_id = text(body, "user", "id"), text(body, "trigger_id")
    conversation_id = row_id(optional_text(action, "value"), "Edit lead's value")
    conversation = await ctx.read(lambda session: session.get(Conversation, conversation_id))
    if conversation is None or conversation.slack_channel is None:
        raise BadPayload(f"Edit lead: no conversation {conversation_id} with a thread")
    channel, thread_ts = conversation.slack_channel, conversation.slack_thread_ts
    try:
        await ctx.actor(client, user_id, channel)  # the window was opened a while ago: check again
        await client.views_push(trigger_id=trigger_id, view=build_edit_lead_modal(conversation))
    except ThreadlineError as exc:
        await tell(client, channel=channel, user=user_id, thread_ts=thread_ts, text=str(exc))
    except SlackApiError as exc:
        if exc.response.get("error") not in STALE_TRIGGER:
            raise
        await tell(client, channel=channel, user=user_id, thread_ts=thread_ts, text=TOO_SLOW)


async def _open_modal(client: AsyncWebClient, clicked: Click, view: dict[str, Any]) -> None:
    if clicked.trigger_id is None:
        raise BadPayload("a click without the trigger_id Slack always sends")
    try:
        await client.views_open(trigger_id=clicked.trigger_id, view=view)
    except SlackApiError as exc:
        if exc.response.get("error") not in STALE_TRIGGER:
            raise
        await _tell(client, clicked, TOO_SLOW)


async def handle_retry_delivery(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    await ack()
    clicked = click(body, action)
    message_id = row_id(clicked.value, "Retry's value")
    try:
        conversation, actor = await _acting_on_card(ctx, client, clicked)
        result = await ctx.run(
            lambda session: do_retry_delivery(session, conversation.id, message_id, actor=actor)
        )
    except ThreadlineError as exc:
        await _tell(client, clicked, f"Could not retry: {exc}")
        return
    if not result.changed:
        await _tell(client, clicked, "That message is no longer failed; nothing to retry.")


async def handle_send_template(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    """A template button on a "reply window closed" notice: send that template as the clicker's message."""
    await ack()
    clicked = click(body, action)
    message_id, template = template_choice(clicked.value)
    try:
        conversation, actor = await _acting_on_card(ctx, client, clicked)
        offered = ctx.templates.get(conversation.channel, ())
        posted = await ctx.run(
            lambda session: do_send_template(
                session, conversation.id, template, actor=actor, offered=offered, instead_of=message_id
            )
        )
    except ThreadlineError as exc:
        await _tell(client, clicked, f"Template not sent: {exc}")
        return
    if posted.duplicate:
        await _tell(client, clicked, f"The template {template.name} is already on its way for that message.")


async def handle_show_full_message(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    """The "Show full email" button of a trimmed thread entry: the whole mail in a modal (members only)."""
    await ack()
    clicked = click(body, action)
    message_id = row_id(clicked.value, "Show full email's value")
    try:
        conversation, _actor = await _acting_on_card(ctx, client, clicked)
        shown = await ctx.read(lambda session: _full_message(session, conversation.id, message_id))
    except ThreadlineError as exc:
        await _tell(client, clicked, str(exc))
        return
    await _open_modal(client, clicked, build_full_message_modal(*shown))


def _full_message(session: Session, conversation_id: int, message_id: int) -> tuple[str, str | None, str]:
    """(sender, subject, whole text) of a message of this conversation kept with its full text."""
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conversation_id or message.full_text is None:
        raise NotFound("That message has no longer text to show.")
    lead = message.conversation.lead
    return sender_label(message, lead.name or lead.email or "Lead"), message.subject, message.full_text


def register(app: AsyncApp, ctx: BotContext) -> None:
    def bind(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def listener(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
            await handler(ctx, ack=ack, body=body, action=action, client=ctx.client)

        return listener

    for action_id in _card_use_cases(ctx):
        app.action(action_id)(bind(handle_card_button))
    app.action(ids.ASSIGN)(bind(handle_assign))
    app.action(ids.EDIT_TAGS)(bind(handle_open_tags))
    app.action(ids.VIEW_LEAD)(bind(partial(handle_view_lead, workspace=WorkspaceUrl())))
    app.action(ids.EDIT_LEAD)(bind(handle_edit_lead))
    app.action(ids.LEAD_MODAL_EDIT)(bind(handle_edit_lead_from_view))
    app.action(ids.RETRY_DELIVERY)(bind(handle_retry_delivery))
    app.action(ids.SHOW_FULL_MESSAGE)(bind(handle_show_full_message))
    app.action(ids.SEND_TEMPLATE)(bind(handle_send_template))
