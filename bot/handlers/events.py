"""Events API: a teammate's message in a conversation's thread becomes a reply to the lead or a note.

The endpoint keeps the event in the inbox and acknowledges it (`register`); `handle_message` runs it
later, from the inbox runner (bot/inbound.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.orm import Session

from bot.access import CouldNotCheck
from bot.context import BotContext, display_name, tell
from bot.mrkdwn import mentioned_user_ids, to_plain
from bot.notes import is_note, strip_note_prefix
from bot.payloads import ThreadMessage, optional_text, thread_message
from core.actions.common import Posted
from core.actions.locks import claim_delivery_key
from core.actions.replies import do_note, do_reply
from core.errors import Deferred, NotAllowed, ThreadlineError
from core.queries.lookup import conversation_for_thread, sent_message_at

log = logging.getLogger(__name__)

SOURCE = "slack"  # the inbox source of Slack's message events
RECHECK_SECONDS = 10.0

# Message subtypes that are a person writing; everything else (joins, bot posts…) is not a reply.
_WRITTEN = (None, "thread_broadcast", "file_share")
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
    message = thread_message(event)
    channel, ts = message.channel, message.ts
    conversation = await ctx.read(
        lambda session: conversation_for_thread(session, channel, message.thread_ts)
    )
    if conversation is None:
        return  # a thread that is not a Threadline conversation
    conversation_id = conversation.id
    try:
        actor = await ctx.actor(client, message.user_id, channel)
    except CouldNotCheck as exc:  # Slack did not answer: the stored event is tried again shortly
        raise Deferred(RECHECK_SECONDS, str(exc)) from exc
    except NotAllowed as exc:
        await _tell(client, message, f"Not sent to the lead: {exc}")
        return
    except ThreadlineError as exc:
        log.warning("ignored a thread message from %s: %s", message.user_id, exc)
        return
    names = await _names(ctx, client, mentioned_user_ids(message.text))
    note = is_note(message.text, message.blocks)
    text = to_plain(strip_note_prefix(message.text) if note else message.text, names).strip()
    event_id = optional_text(body, "event_id") or f"{channel}:{ts}"

    def record(session: Session) -> Posted | None:
        if not claim_delivery_key(session, "slack", event_id):
            return None  # Slack retried an event we already acted on
        use_case = do_note if note else do_reply
        return use_case(session, conversation_id, text, actor=actor, slack_channel=channel, slack_ts=ts)

    if message.subtype == "file_share" and not note:
        await _tell(client, message, FILES_NOT_SENT)
        if not text:
            return
    try:
        await ctx.run(record)
    except ThreadlineError as exc:
        await _tell(client, message, f"Not sent: {exc}")


async def _tell(client: AsyncWebClient, message: ThreadMessage, text: str) -> None:
    await tell(client, channel=message.channel, user=message.user_id, thread_ts=message.thread_ts, text=text)


async def _warn_about_edit(ctx: BotContext, event: dict[str, Any], client: AsyncWebClient) -> None:
    """A rep edited a message the lead already received: say so, rather than let them think it updated."""
    edited = event.get("message")
    channel = optional_text(event, "channel")
    ts, user = optional_text(edited, "ts"), optional_text(edited, "user")
    if channel is None or ts is None or user is None or optional_text(edited, "bot_id"):
        return
    sent = await ctx.read(lambda session: sent_message_at(session, channel, ts))
    if sent:
        thread_ts = optional_text(edited, "thread_ts")
        await tell(client, channel=channel, user=user, thread_ts=thread_ts, text=EDITS_NOT_SENT)


async def _names(ctx: BotContext, client: AsyncWebClient, user_ids: list[str]) -> dict[str, str]:
    """Display names for mentioned teammates, so the lead reads "Ana", not a Slack user id."""
    names: dict[str, str] = {}
    for user_id in user_ids:
        try:
            names[user_id] = display_name(await ctx.access.lookup(client, user_id))
        except ThreadlineError:
            continue
    return names


async def keep_message_event(ctx: BotContext, body: dict[str, Any]) -> None:
    """Keep a message event in the inbox, if it may become a reply, a note or an edit warning: Slack
    sends every message of every channel the app is in. Slack's retries carry the same event id."""
    event = body.get("event")
    if isinstance(event, dict) and (
        event.get("subtype") == "message_changed" or is_teammate_thread_reply(event)
    ):
        event_id = body.get("event_id")
        key = f"event:{event_id}" if isinstance(event_id, str) and event_id else None
        await ctx.store(SOURCE, json.dumps(body).encode(), key)


def register(app: AsyncApp, ctx: BotContext) -> None:
    async def on_message(body: dict[str, Any]) -> None:  # over Socket Mode; HTTP keeps them at the edge
        await keep_message_event(ctx, body)

    app.event("message")(on_message)
