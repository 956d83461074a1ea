"""The AI's buttons in a thread: Why? (the stored decision in a modal), 👍/👎 on an AI answer (👎 also
opens the correction modal), the correction's submission, and Approve/Reject on a correction posted
for review. Each acks at once, checks the clicker may act on the conversation (bot/access.py), runs
one use-case; clicking twice changes nothing the second time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.orm import Session

from bot.blocks import ids
from bot.blocks.ai import build_correction_modal, build_knowledge_reviewed, build_why_modal, parse_correction
from bot.context import BotContext
from bot.handlers.actions import _acting_on_card, _open_modal, _tell
from bot.payloads import BadPayload, click, row_id, submission
from core.actions.ai_feedback import Rating, do_correct_decision, do_rate_decision
from core.actions.knowledge import do_review_knowledge, entry_conversation
from core.errors import NotFound, ThreadlineError
from core.models import AIDecision, Conversation, KnowledgeEntry, KnowledgeStatus, Member
from core.queries.ai_stats import Why, why, why_decision

THANKS = {
    Rating.UP: "Thanks: your :+1: on this AI answer is recorded.",
    Rating.DOWN: "Your :-1: on this AI answer is recorded.",
}


async def handle_why(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    """Why? on an AI answer: the decision behind that message."""
    await _show_why(ctx, ack, body, action, client, why)


async def handle_why_decision(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    """Why? on the AI's hand-off notice: the decision that handed the conversation over."""
    await _show_why(ctx, ack, body, action, client, why_decision)


async def _show_why(
    ctx: BotContext,
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    load: Callable[[Session, int, int], Why],
) -> None:
    await ack()
    clicked = click(body, action)
    row = row_id(clicked.value, "Why?'s value")
    try:
        conversation, _actor = await _acting_on_card(ctx, client, clicked)
        shown = await ctx.read(lambda session: load(session, conversation.id, row))
    except ThreadlineError as exc:
        await _tell(client, clicked, str(exc))
        return
    await _open_modal(client, clicked, build_why_modal(shown.decision, feedback_by=shown.feedback_by))


async def handle_rating(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    """👍 or 👎: recorded on the decision; 👎 then asks what the answer should have been."""
    await ack()
    clicked = click(body, action)
    rating = Rating.UP if clicked.action_id == ids.AI_UP else Rating.DOWN
    message_id = row_id(clicked.value, "the rating's value")
    try:
        conversation, actor = await _acting_on_card(ctx, client, clicked)
        shown = await ctx.read(lambda session: why(session, conversation.id, message_id))
        await ctx.run(lambda session: do_rate_decision(session, shown.decision.id, rating, actor=actor))
    except ThreadlineError as exc:
        await _tell(client, clicked, f"Not recorded: {exc}")
        return
    if rating == Rating.DOWN:
        modal = build_correction_modal(shown.decision.id, asked=shown.asked, answered=shown.answered)
        await _open_modal(client, clicked, modal)
    else:
        await _tell(client, clicked, THANKS[rating])


async def handle_correction_submission(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
) -> None:
    submitted = submission(body, view)
    decision_id = row_id(submitted.private_metadata, "the correction modal's private_metadata")
    try:
        correction = parse_correction(submitted.values)
    except ValueError as exc:
        raise BadPayload(f"correction modal: {exc}") from exc
    try:
        conversation = await ctx.read(lambda session: _decision_conversation(session, decision_id))
        actor = await ctx.actor(client, submitted.user_id, conversation.slack_channel or "")
        await ctx.run(lambda session: do_correct_decision(session, decision_id, correction, actor=actor))
    except ThreadlineError as exc:
        await ack(response_action="errors", errors={ids.AI_CORRECTION_BLOCK: f"Not saved: {exc}"})
        return
    await ack()


async def handle_review(
    ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    """Approve or Reject on a correction posted for review; the post then says what was decided."""
    await ack()
    clicked = click(body, action)
    entry_id = row_id(clicked.value, "the review button's value")
    approve = clicked.action_id == ids.KNOWLEDGE_APPROVE
    try:
        channel = await ctx.read(lambda session: _entry_channel(session, entry_id))
        actor = await ctx.actor(client, clicked.user_id, channel)
        reviewed = await ctx.run(
            lambda session: do_review_knowledge(session, entry_id, approve=approve, actor=actor)
        )
        entry, reviewer = await ctx.read(lambda session: _reviewed_entry(session, entry_id))
    except ThreadlineError as exc:
        await _tell(client, clicked, f"Not reviewed: {exc}")
        return
    if not reviewed.changed:
        how = "approved" if reviewed.status == KnowledgeStatus.APPROVED else "rejected"
        who = f" by <@{reviewer}>" if reviewer else ""
        await _tell(client, clicked, f"This correction was already {how}{who}.")
    text, blocks = build_knowledge_reviewed(entry, reviewer=reviewer)
    try:  # the decision is made and kept; the post saying so is a courtesy
        await client.chat_update(channel=clicked.channel, ts=clicked.message_ts, text=text, blocks=blocks)
    except SlackApiError as exc:
        await _tell(
            client, clicked, f"Reviewed, but the post could not be updated ({exc.response.get('error')})."
        )


def _decision_conversation(session: Session, decision_id: int) -> Conversation:
    decision = session.get(AIDecision, decision_id)
    conversation = session.get(Conversation, decision.conversation_id) if decision else None
    if conversation is None or conversation.slack_channel is None:
        raise NotFound("This AI answer no longer belongs to a conversation in Slack.")
    return conversation


def _entry_channel(session: Session, entry_id: int) -> str:
    """The Slack channel whose members may review the entry: its conversation's."""
    entry = session.get(KnowledgeEntry, entry_id)
    conversation = entry_conversation(session, entry) if entry is not None else None
    if conversation is None or conversation.slack_channel is None:
        raise NotFound("This correction no longer exists.")
    return str(conversation.slack_channel)


def _reviewed_entry(session: Session, entry_id: int) -> tuple[KnowledgeEntry, str | None]:
    entry = session.get_one(KnowledgeEntry, entry_id)
    member = session.get(Member, entry.reviewed_by_id) if entry.reviewed_by_id is not None else None
    return entry, member.slack_user_id if member is not None else None


def register(app: AsyncApp, ctx: BotContext) -> None:
    def bind(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def listener(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
            await handler(ctx, ack=ack, body=body, action=action, client=ctx.client)

        return listener

    async def on_correction(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await handle_correction_submission(ctx, ack, body, view, ctx.client)

    app.action(ids.AI_WHY)(bind(handle_why))
    app.action(ids.AI_WHY_DECISION)(bind(handle_why_decision))
    app.action(ids.AI_UP)(bind(handle_rating))
    app.action(ids.AI_DOWN)(bind(handle_rating))
    app.action(ids.KNOWLEDGE_APPROVE)(bind(handle_review))
    app.action(ids.KNOWLEDGE_REJECT)(bind(handle_review))
    app.view(ids.AI_CORRECTION_MODAL)(on_correction)
