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
from core.actions.common import Actor, Posted
from core.actions.locks import claim_delivery_key
from core.actions.replies import Edited, do_delete, do_edit, do_note, do_reply
from core.errors import Deferred, NotAllowed, ThreadlineError
from core.ports import Attachment
from core.queries.lookup import conversation_for_thread

log = logging.getLogger(__name__)

SOURCE = "slack"  # the inbox source of Slack's message events
RECHECK_SECONDS = 10.0

# Message subtypes that are a person writing; everything else (joins, bot posts…) is not a reply.
_WRITTEN = (None, "thread_broadcast", "file_share")
SHARED_FILES_LIMIT = 10  # Slack attaches at most 10 files to one message
EDITS_NOT_SENT = (
    "Edits don't reach the lead: they already have your first version. Write a new reply to correct it."
)
DELETES_NOT_SENT = "Deleting it here does not unsend it: the lead already has your message."
DELETED_IN_TIME = "Deleted before it was sent: the lead will not get it."
NOT_SENT_REACTION = "warning"


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
    subtype = event.get("subtype")
    if subtype == "message_changed":
        await _on_edit(ctx, event, client)
    elif subtype == "message_deleted":
        await _on_delete(ctx, event, client)
    elif is_teammate_thread_reply(event) and not _by_this_app(event, body):
        files = shared_files(event)
        await _on_written(ctx, thread_message(event), optional_text(body, "event_id"), client, files)


def _by_this_app(event: dict[str, Any], body: dict[str, Any]) -> bool:
    """Our own upload of a lead's file: Slack's file_share event carries our bot user, not a bot_id."""
    authorizations = body.get("authorizations")
    if not isinstance(authorizations, list):
        return False
    ours = {a.get("user_id") for a in authorizations if isinstance(a, dict) and a.get("is_bot") is True}
    return event.get("user") in ours


def shared_files(event: dict[str, Any]) -> list[Attachment]:
    """The files a teammate shared with their message, by Slack file id (the deliverer fetches them)."""
    files = event.get("files")
    if not isinstance(files, list):
        return []
    shared: list[Attachment] = []
    for item in files[:SHARED_FILES_LIMIT]:
        file_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(file_id, str) or not file_id:
            continue
        name, mime_type = item.get("name"), item.get("mimetype")
        attachment = Attachment(
            kind="file",
            name=name if isinstance(name, str) and name else "file",
            mime_type=mime_type if isinstance(mime_type, str) and mime_type else "application/octet-stream",
            ref={"slack_file_id": file_id},
            slack_file_id=file_id,  # it is in Slack already: the mirror has nothing to upload
        )
        if isinstance(item.get("size"), int):
            attachment["size"] = item["size"]
        shared.append(attachment)
    return shared


async def _on_written(
    ctx: BotContext,
    message: ThreadMessage,
    event_id: str | None,
    client: AsyncWebClient,
    files: list[Attachment] | None = None,
) -> None:
    channel, ts = message.channel, message.ts
    found = await _conversation_and_actor(ctx, client, message)
    if found is None:
        return
    conversation_id, actor = found
    note, text = await _decode(ctx, client, message)
    key = event_id or f"{channel}:{ts}"

    def record(session: Session) -> Posted | None:
        if not claim_delivery_key(session, "slack", key):
            return None  # Slack retried an event we already acted on
        if note:  # a note's files stay in Slack: nothing of a note ever reaches the lead
            return do_note(session, conversation_id, text, actor=actor, slack_channel=channel, slack_ts=ts)
        return do_reply(
            session,
            conversation_id,
            text,
            actor=actor,
            slack_channel=channel,
            slack_ts=ts,
            attachments=files or [],
        )

    try:
        await ctx.run(record)
    except ThreadlineError as exc:
        await _tell(client, message, f"Not sent: {exc}")
        await _mark_not_sent(client, message)


async def _conversation_and_actor(
    ctx: BotContext, client: AsyncWebClient, message: ThreadMessage
) -> tuple[int, Actor] | None:
    """The conversation the thread belongs to and the teammate writing in it; None when there is
    nothing to do (not a Threadline thread, or someone who may not act — told why)."""
    conversation = await ctx.read(
        lambda session: conversation_for_thread(session, message.channel, message.thread_ts)
    )
    if conversation is None:
        return None  # a thread that is not a Threadline conversation
    try:
        return conversation.id, await ctx.actor(client, message.user_id, message.channel)
    except CouldNotCheck as exc:  # Slack did not answer: the stored event is tried again shortly
        raise Deferred(RECHECK_SECONDS, str(exc)) from exc
    except NotAllowed as exc:
        await _tell(client, message, f"Not sent to the lead: {exc}")
    except ThreadlineError as exc:
        log.warning("ignored a thread message from %s: %s", message.user_id, exc)
    return None


async def _decode(ctx: BotContext, client: AsyncWebClient, message: ThreadMessage) -> tuple[bool, str]:
    """Whether it is a note, and its text as the lead (or the record) reads it."""
    names = await _names(ctx, client, mentioned_user_ids(message.text))
    note = is_note(message.text, message.blocks)
    return note, to_plain(strip_note_prefix(message.text) if note else message.text, names).strip()


async def _mark_not_sent(client: AsyncWebClient, message: ThreadMessage) -> None:
    """The team sees at a glance that this message did not go to the lead."""
    try:
        await client.reactions_add(channel=message.channel, timestamp=message.ts, name=NOT_SENT_REACTION)
    except Exception as exc:  # best effort, like telling: the rep was told privately already
        log.warning("could not mark message %s as not sent: %s", message.ts, type(exc).__name__)


async def _on_edit(ctx: BotContext, event: dict[str, Any], client: AsyncWebClient) -> None:
    """A teammate edited a thread message: before it went out the lead gets the edit; after, they have
    the original and the rep is told. An edit of a message that was never taken (a variable that could
    not be filled…) is taken now, as if written anew."""
    edited = _edited_message(event)
    if edited is None:
        return
    found = await _conversation_and_actor(ctx, client, edited)
    if found is None:
        return
    _conversation_id, actor = found
    note, text = await _decode(ctx, client, edited)
    try:
        outcome = await ctx.run(
            lambda session: do_edit(session, edited.channel, edited.ts, text, actor=actor, note=note)
        )
    except ThreadlineError as exc:
        await _tell(client, edited, f"Your edit was not taken: {exc}")
        return
    if outcome == Edited.TOO_LATE:
        await _tell(client, edited, EDITS_NOT_SENT)
    elif outcome == Edited.UNKNOWN:
        await _on_written(ctx, edited, f"edit:{optional_text(event, 'event_ts') or edited.ts}", client)


async def _on_delete(ctx: BotContext, event: dict[str, Any], client: AsyncWebClient) -> None:
    deleted = _deleted_message(event)
    if deleted is None:
        return
    found = await _conversation_and_actor(ctx, client, deleted)
    if found is None:
        return
    _conversation_id, actor = found
    outcome = await ctx.run(lambda session: do_delete(session, deleted.channel, deleted.ts, actor=actor))
    if outcome == Edited.TOO_LATE:
        await _tell(client, deleted, DELETES_NOT_SENT)
    elif outcome == Edited.WITHDRAWN:
        await _tell(client, deleted, DELETED_IN_TIME)


def _edited_message(event: dict[str, Any]) -> ThreadMessage | None:
    """The teammate's thread message as it reads after the edit; None for what is not one (our own
    card updates, link unfurls that change nothing written)."""
    edited, before = event.get("message"), event.get("previous_message")
    if not isinstance(edited, dict) or optional_text(edited, "bot_id"):
        return None
    if isinstance(before, dict) and before.get("text") == edited.get("text"):
        return None
    return _in_thread({**edited, "channel": event.get("channel")})


def _deleted_message(event: dict[str, Any]) -> ThreadMessage | None:
    before = event.get("previous_message")
    if not isinstance(before, dict) or optional_text(before, "bot_id"):
        return None
    return _in_thread({**before, "channel": event.get("channel")})


def _in_thread(message: dict[str, Any]) -> ThreadMessage | None:
    if not all(optional_text(message, key) for key in ("user", "ts", "thread_ts", "channel")):
        return None
    if message["thread_ts"] == message["ts"]:
        return None  # the thread's first message is our card, never a teammate's
    return thread_message(message)


async def _tell(client: AsyncWebClient, message: ThreadMessage, text: str) -> None:
    await tell(client, channel=message.channel, user=message.user_id, thread_ts=message.thread_ts, text=text)


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
        event.get("subtype") in {"message_changed", "message_deleted"} or is_teammate_thread_reply(event)
    ):
        event_id = body.get("event_id")
        key = f"event:{event_id}" if isinstance(event_id, str) and event_id else None
        await ctx.store(SOURCE, json.dumps(body).encode(), key)


def register(app: AsyncApp, ctx: BotContext) -> None:
    async def on_message(body: dict[str, Any]) -> None:  # over Socket Mode; HTTP keeps them at the edge
        await keep_message_event(ctx, body)

    app.event("message")(on_message)
