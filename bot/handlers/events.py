"""Events API: a teammate's message in a conversation's thread becomes a reply to the lead or a note."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.orm import Session

from bot.context import BotContext, tell
from bot.mrkdwn import mentioned_user_ids, to_plain
from bot.notes import is_note, strip_note_prefix
from core.actions.common import Posted
from core.actions.locks import claim_delivery_key
from core.actions.replies import do_note, do_reply
from core.errors import ThreadlineError
from core.queries.lookup import conversation_for_thread, sent_message_at

log = logging.getLogger(__name__)

# Message subtypes that are a person writing; everything else (joins, bot posts…) is not a reply.
_WRITTEN = {None, "thread_broadcast", "file_share"}
FILES_NOT_SENT = "Files are not sent to leads yet: only the text of your message goes to the lead."
EDITS_NOT_SENT = (
    "Edits don't reach the lead: they already have your first version. Write a new reply to correct it."
)


def is_teammate_thread_reply(event: dict[str, Any]) -> bool:
    return (
        event.get("subtype") in _WRITTEN
        and not event.get("bot_id")  # our own posts and other apps' never go to a lead
        and not event.get("hidden")
        and bool(event.get("user"))
        and bool(event.get("thread_ts"))
        and event.get("thread_ts") != event.get("ts")
    )


async def handle_message(
    ctx: BotContext, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
) -> None:
    if event.get("subtype") == "message_changed":
        await _warn_about_edit(ctx, event, client)
        return
    if not is_teammate_thread_reply(event):
        return
    channel, thread_ts, ts = event["channel"], event["thread_ts"], event["ts"]
    conversation = await ctx.read(lambda session: conversation_for_thread(session, channel, thread_ts))
    if conversation is None:
        return  # a thread that is not a Threadline conversation
    conversation_id = conversation.id
    try:
        actor = await ctx.actor(client, event["user"])
    except ThreadlineError as exc:
        log.warning("ignored a thread message from %s: %s", event["user"], exc)
        return
    raw = event.get("text") or ""
    names = await _names(ctx, client, mentioned_user_ids(raw))
    note = is_note(raw, event.get("blocks"))
    text = to_plain(strip_note_prefix(raw) if note else raw, names).strip()
    event_id = str(body.get("event_id") or f"{channel}:{ts}")

    def record(session: Session) -> Posted | None:
        if not claim_delivery_key(session, "slack", event_id):
            return None  # Slack retried an event we already acted on
        use_case = do_note if note else do_reply
        return use_case(session, conversation_id, text, actor=actor, slack_channel=channel, slack_ts=ts)

    if event.get("subtype") == "file_share" and not note:
        await tell(client, channel=channel, user=event["user"], thread_ts=thread_ts, text=FILES_NOT_SENT)
        if not text:
            return
    try:
        await ctx.run(record)
    except ThreadlineError as exc:
        await tell(client, channel=channel, user=event["user"], thread_ts=thread_ts, text=f"Not sent: {exc}")


async def _warn_about_edit(ctx: BotContext, event: dict[str, Any], client: AsyncWebClient) -> None:
    """A rep edited a message the lead already received: say so, rather than let them think it updated."""
    edited = event.get("message") or {}
    channel, ts = event.get("channel"), edited.get("ts")
    if not channel or not ts or edited.get("bot_id") or not edited.get("user"):
        return
    sent = await ctx.read(lambda session: sent_message_at(session, channel, ts))
    if sent:
        await tell(
            client,
            channel=channel,
            user=edited["user"],
            thread_ts=edited.get("thread_ts"),
            text=EDITS_NOT_SENT,
        )


async def _names(ctx: BotContext, client: AsyncWebClient, user_ids: list[str]) -> dict[str, str]:
    """Display names for mentioned teammates, so the lead reads "Ana", not a Slack user id."""
    names: dict[str, str] = {}
    for user_id in user_ids:
        try:
            names[user_id] = (await ctx.member(client, user_id)).name
        except ThreadlineError:
            continue
    return names


def register(app: AsyncApp, ctx: BotContext) -> None:
    async def on_message(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        await handle_message(ctx, event, body, client)

    app.event("message")(on_message)
