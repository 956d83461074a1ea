"""App Home: drawn each time a teammate opens it, and again after each click on it (Take it, the
notification checkboxes), with a line at the top answering the click."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import ids
from bot.blocks.home import build_home, build_home_for_outsider, not_taken_notice, taken_notice
from bot.context import BotContext, display_name
from bot.payloads import BadPayload, optional_text, row_id, text
from core.actions.members import Notifications, do_set_notifications
from core.actions.queue import do_take_from_queue
from core.errors import NotFound, ThreadlineError
from core.models import Conversation, utcnow
from core.queries.ai_stats import knowledge_to_review
from core.queries.home import home_summary
from core.queries.lookup import slack_channels_in_use

log = logging.getLogger(__name__)
WEEK = timedelta(days=7)
SLACK_TROUBLE = (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError)


class HomeTab:
    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        self._workspace_url: str | None = None

    async def workspace_url(self, client: AsyncWebClient) -> str | None:
        """The workspace's address (auth.test, once), to spell thread links without a call per row."""
        if self._workspace_url is None:
            try:
                url = (await client.auth_test()).get("url")
            except SLACK_TROUBLE as exc:  # the lines then go without links; the next draw tries again
                log.warning("App Home without thread links: auth.test failed (%s)", type(exc).__name__)
                return None
            self._workspace_url = url if isinstance(url, str) and url.startswith("https://") else None
        return self._workspace_url

    async def publish(self, client: AsyncWebClient, user_id: str, *, notice: str | None = None) -> None:
        ctx = self.ctx
        try:
            await ctx.access.user(client, user_id)
        except ThreadlineError as exc:  # guests and apps see no conversation, only why
            await self._views_publish(client, user_id, build_home_for_outsider(str(exc)))
            return
        visible = [c for c in await ctx.read(slack_channels_in_use) if await self._in(client, user_id, c)]
        since = utcnow() - WEEK
        summary = await ctx.read(lambda s: home_summary(s, user_id, channels=visible, since=since))
        to_review = await ctx.read(lambda s: knowledge_to_review(s, channels=visible))
        url = await self.workspace_url(client)
        view = build_home(summary, workspace_url=url, notice=notice, to_review=to_review)
        await self._views_publish(client, user_id, view)

    async def _in(self, client: AsyncWebClient, user_id: str, channel: str) -> bool:
        try:
            return await self.ctx.access.in_channel(client, user_id, channel)
        except ThreadlineError:  # a channel Slack will not show us (archived, left): nothing to see there
            return False

    @staticmethod
    async def _views_publish(client: AsyncWebClient, user_id: str, view: dict[str, Any]) -> None:
        try:
            await client.views_publish(user_id=user_id, view=view)
        except SLACK_TROUBLE as exc:  # the next opening of the tab draws it again
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            log.warning("App Home not published for %s: %s", user_id, error)


async def handle_home_opened(home: HomeTab, event: dict[str, Any], client: AsyncWebClient) -> None:
    if event.get("tab") != "home":
        return
    await home.publish(client, text(event, "user"))


async def handle_take(
    home: HomeTab, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    """Take it: the conversation becomes the clicker's, if they may act in its channel and nobody was
    faster."""
    await ack()
    user_id = text(body, "user", "id")
    conversation_id = row_id(optional_text(action, "value"), "Take it's value")
    ctx = home.ctx
    try:
        conversation = await ctx.read(lambda session: session.get(Conversation, conversation_id))
        if conversation is None or conversation.slack_channel is None:
            raise NotFound("That conversation is no longer in Threadline.")
        actor = await ctx.actor(client, user_id, conversation.slack_channel)
        taken = await ctx.run(lambda session: do_take_from_queue(session, conversation_id, actor=actor))
        lead = conversation.lead.name or conversation.lead.phone or conversation.lead.email or "a lead"
        notice = taken_notice(lead) if taken.taken else not_taken_notice(lead, taken_by=taken.taken_by)
    except ThreadlineError as exc:
        notice = str(exc)
    await home.publish(client, user_id, notice=notice)


async def handle_notifications(
    home: HomeTab, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    """The notification checkboxes: what is ticked now is what is wanted."""
    await ack()
    user_id = text(body, "user", "id")
    selected = action.get("selected_options")
    if not isinstance(selected, list) or not all(isinstance(option, dict) for option in selected):
        raise BadPayload("selected_options: expected a list of options")
    ticked = {value for option in selected if isinstance(value := option.get("value"), str)}
    wanted = Notifications(
        on_assign=ids.NOTIFY_ON_ASSIGN in ticked, on_message=ids.NOTIFY_ON_MESSAGE in ticked
    )
    notice = None
    try:
        user = await home.ctx.access.user(client, user_id)
        name, email = display_name(user), (user.get("profile") or {}).get("email")
        await home.ctx.run(
            lambda session: do_set_notifications(session, user_id, wanted, name=name, email=email)
        )
    except ThreadlineError as exc:
        notice = str(exc)
    await home.publish(client, user_id, notice=notice)


def register(app: AsyncApp, ctx: BotContext) -> None:
    home = HomeTab(ctx)

    async def on_home_opened(event: dict[str, Any]) -> None:
        await handle_home_opened(home, event, ctx.client)

    async def on_take(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await handle_take(home, ack, body, action, ctx.client)

    async def on_notifications(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await handle_notifications(home, ack, body, action, ctx.client)

    app.event("app_home_opened")(on_home_opened)
    app.action(ids.HOME_TAKE)(on_take)
    app.action(ids.HOME_NOTIFICATIONS)(on_notifications)
