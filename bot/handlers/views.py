"""Modal submissions: the Tags modal sets the conversation's tags exactly as chosen; Edit lead
corrects the lead, answering each field Slack should point at with response_action=errors."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import ids
from bot.blocks.modals import parse_lead_edit, parse_tags_submission
from bot.context import BotContext
from bot.payloads import BadPayload, Submission, row_id, submission
from core.actions.common import Actor
from core.actions.conversation import do_set_tags
from core.actions.leads import InvalidLeadEdit, check_lead_edit, do_edit_lead
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
        actor = await _submitter(ctx, client, submitted, conversation_id)
        await ctx.run(lambda session: do_set_tags(session, conversation_id, names, actor=actor))
    except ThreadlineError as exc:
        await ack(response_action="errors", errors={ids.NEW_TAGS_BLOCK: f"Not saved: {exc}"})
        return
    await ack()


async def handle_lead_edit_submission(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
) -> None:
    submitted = submission(body, view)
    conversation_id = row_id(submitted.private_metadata, "the Edit lead modal's private_metadata")
    try:
        edit = parse_lead_edit(submitted.values)
    except ValueError as exc:
        raise BadPayload(f"Edit lead modal: {exc}") from exc
    try:
        actor = await _submitter(ctx, client, submitted, conversation_id)
        _, problems = check_lead_edit(edit)
        if problems:  # said next to each field, the modal stays open with what was typed
            raise InvalidLeadEdit(problems)
        await ctx.run(lambda session: do_edit_lead(session, conversation_id, edit, actor=actor))
    except InvalidLeadEdit as exc:
        await ack(response_action="errors", errors=exc.problems)
        return
    except ThreadlineError as exc:
        await ack(response_action="errors", errors={ids.LEAD_FIELDS[0]: f"Not saved: {exc}"})
        return
    await ack(response_action="clear")  # opened over View lead, whose numbers are now stale: close both


async def _submitter(
    ctx: BotContext, client: AsyncWebClient, submitted: Submission, conversation_id: int
) -> Actor:
    """Who submitted, if they may act on the conversation (the same rule as its card's buttons)."""
    conversation = await ctx.read(lambda session: session.get(Conversation, conversation_id))
    if conversation is None or conversation.slack_channel is None:
        raise NotFound("This conversation no longer exists.")
    return await ctx.actor(client, submitted.user_id, conversation.slack_channel)


def register(app: AsyncApp, ctx: BotContext) -> None:
    async def on_tags(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await handle_tags_submission(ctx, ack, body, view, ctx.client)

    async def on_lead_edit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await handle_lead_edit_submission(ctx, ack, body, view, ctx.client)

    app.view(ids.TAGS_MODAL)(on_tags)
    app.view(ids.LEAD_EDIT_MODAL)(on_lead_edit)
