"""What the Slack handlers need from the rest of Threadline, passed in rather than imported."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.orm import Session

from core.actions.common import Actor
from core.actions.members import do_register_member
from core.db import Database
from core.errors import InvalidAction, NotFound
from core.models import Member
from core.queries.lookup import find_member

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotContext:
    db: Database
    ai_available: bool  # an AI agent runs on this server

    async def run(self, use_case: Callable[[Session], T]) -> T:
        """Run a use-case in its transaction without blocking the event loop."""
        return await asyncio.to_thread(self.db.run, use_case)

    async def read(self, query: Callable[[Session], T]) -> T:
        def in_session() -> T:
            with self.db.sessions() as session:
                return query(session)

        return await asyncio.to_thread(in_session)

    async def member(self, client: AsyncWebClient, slack_user_id: str) -> Member:
        """The teammate behind a Slack user id, registered on first sight from users.info."""
        known = await self.read(lambda session: find_member(session, slack_user_id))
        if known is not None:
            return known
        try:
            response = await client.users_info(user=slack_user_id)
        except SlackApiError as exc:
            if exc.response.get("error") in {"user_not_found", "user_not_visible"}:
                raise NotFound(f"Slack user {slack_user_id} is not known to this workspace") from exc
            raise
        user = response["user"]
        if user.get("is_bot") or user.get("deleted"):
            raise InvalidAction("Only people in this workspace can act on conversations.")
        profile = user.get("profile") or {}
        name = (
            profile.get("display_name") or user.get("real_name") or profile.get("real_name") or user["name"]
        )
        email = profile.get("email")
        return await self.run(
            lambda session: do_register_member(session, slack_user_id, name=name, email=email)
        )

    async def actor(self, client: AsyncWebClient, slack_user_id: str) -> Actor:
        return Actor.member(await self.member(client, slack_user_id))


async def tell(client: AsyncWebClient, *, channel: str, user: str, thread_ts: str | None, text: str) -> None:
    """An ephemeral note to one person, in the thread they acted in; best effort."""
    try:
        await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text)
    except SlackApiError as exc:  # e.g. someone outside the channel: nothing more we can tell them
        log.warning("could not tell %s %r: %s", user, text, exc.response.get("error"))
