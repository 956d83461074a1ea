"""`/leads`: parse, check who asks, answer privately — the first page rides in the ack itself, so the
answer arrives within Slack's 3 s without a second call. Previous/Next answer through the click's
`response_url`, replacing the list in place.

Only conversations of the Slack channels the caller is in are listed or counted; guests and apps get
only why not (the App Home rule, bot.access).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.blocks import ids
from bot.blocks.leads import build_leads_list, build_stats
from bot.context import BotContext
from bot.leads_grammar import GRAMMAR, MAX_TEXT, GrammarError, Help, ListRequest, StatsRequest, parse
from bot.payloads import BadPayload, text
from core.errors import ThreadlineError
from core.models import utcnow
from core.queries.ai_stats import ai_stats
from core.queries.lookup import find_member, slack_channels_in_use
from core.queries.search import Owner, search_leads
from core.queries.stats import conversation_stats

log = logging.getLogger(__name__)

Answer = tuple[str, list[dict[str, Any]] | None]  # (text, blocks)
MAX_OFFSET = 1_000_000


async def handle_leads(ctx: BotContext, ack: AsyncAck, command: dict[str, Any]) -> None:
    user_id = text(command, "user_id")
    said, blocks = await answer(ctx, ctx.client, user_id, command.get("text") or "", offset=0)
    if blocks is None:
        await ack(response_type="ephemeral", text=said)
    else:
        await ack(response_type="ephemeral", text=said, blocks=blocks)


async def handle_page(ctx: BotContext, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
    await ack()
    user_id, response_url = text(body, "user", "id"), text(body, "response_url")
    command_text, offset = _page_value(action.get("value"))
    said, blocks = await answer(ctx, ctx.client, user_id, command_text, offset=offset)
    reply: dict[str, Any] = {"text": said, "replace_original": True, "response_type": "ephemeral"}
    if blocks is not None:
        reply["blocks"] = blocks
    try:
        response = await AsyncWebhookClient(response_url).send(**reply)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:  # the network: the rep clicks again
        log.warning("/leads page not delivered: %s", type(exc).__name__)
        return
    if response.status_code != 200:
        log.warning("/leads page refused by Slack: %s %s", response.status_code, response.body[:200])


async def answer(
    ctx: BotContext, client: AsyncWebClient, user_id: str, command_text: str, *, offset: int
) -> Answer:
    """What `/leads <command_text>` shows `user_id`, from the page at `offset`."""
    try:
        request = parse(command_text)
    except GrammarError as error:
        return str(error), None
    if isinstance(request, Help):
        return GRAMMAR, None
    try:
        user = await ctx.access.user(client, user_id)
    except ThreadlineError as exc:
        return str(exc), None
    channels = await visible_channels(ctx, client, user_id)
    zone = _zone(user.get("tz"))
    member = await ctx.read(lambda session: find_member(session, user_id))
    member_id = member.id if member is not None else None
    if isinstance(request, StatsRequest):
        if request.mine and member_id is None:
            return "No numbers of yours yet: nothing has been assigned to you.", None
        since = request.period.since(utcnow(), zone)
        stats = await ctx.read(
            lambda session: conversation_stats(
                session, since=since, channels=channels, member_id=member_id if request.mine else None
            )
        )
        shown = None  # the AI's turns: the team's numbers only, and only once there is an AI to speak of
        if not request.mine:
            ai = await ctx.read(lambda session: ai_stats(session, since=since, channels=channels))
            shown = ai if ai.turns or ctx.ai_available else None
        return build_stats(stats, period=request.period.value, mine=request.mine, ai=shown)
    return await _list(ctx, request, command_text, channels, member_id, zone, offset)


async def _list(
    ctx: BotContext,
    request: ListRequest,
    command_text: str,
    channels: list[str],
    member_id: int | None,
    zone: tzinfo,
    offset: int,
) -> Answer:
    lead_filter = request.lead_filter
    since = lead_filter.period.since(utcnow(), zone)
    page = await ctx.read(
        lambda session: search_leads(
            session, lead_filter, channels=channels, member_id=member_id, since=since, offset=offset
        )
    )
    if not channels:
        empty = "You are in none of the channels lead conversations live in: join one to see its leads."
    elif lead_filter.owner is Owner.MINE and member_id is None:
        empty = "Nothing is assigned to you yet."
    else:
        empty = "No conversations match."
    return build_leads_list(page, command_text=command_text.strip(), empty=empty)


async def visible_channels(ctx: BotContext, client: AsyncWebClient, user_id: str) -> list[str]:
    """The Slack channels conversations live in that `user_id` is a member of."""

    async def sees(channel: str) -> bool:
        try:
            return await ctx.access.in_channel(client, user_id, channel)
        except ThreadlineError:  # a channel Slack will not show us (archived, left): nothing to see there
            return False

    # Side by side: with many routed channels and a cold cache, one after another could pass Slack's 3 s.
    in_use = await ctx.read(slack_channels_in_use)
    answers = await asyncio.gather(*(sees(channel) for channel in in_use))
    return [channel for channel, seen in zip(in_use, answers, strict=True) if seen]


def _zone(name: object) -> tzinfo:
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC


def _page_value(value: object) -> tuple[str, int]:
    """The query and offset a Previous/Next button carries (ids.LEADS_NEXT)."""
    try:
        data = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BadPayload("leads page: expected a JSON object")
    query, offset = data.get("q"), data.get("o")
    if not isinstance(query, str) or len(query) > MAX_TEXT:
        raise BadPayload("leads page: expected the query")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise BadPayload("leads page: expected an offset")
    return query, offset


def register(app: AsyncApp, ctx: BotContext) -> None:
    async def on_leads(ack: AsyncAck, command: dict[str, Any]) -> None:
        await handle_leads(ctx, ack, command)

    async def on_page(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await handle_page(ctx, ack, body, action)

    # Whatever the team named the command in its manifest (/leads by default), it means this one.
    app.command(re.compile(r"^/"))(on_leads)
    app.action(ids.LEADS_PREVIOUS)(on_page)
    app.action(ids.LEADS_NEXT)(on_page)
