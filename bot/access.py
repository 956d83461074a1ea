"""Who may act on a conversation (DESIGN §3): full members of the workspace who are in the Slack
channel the conversation lives in — not guests, not apps, not people from another organisation (a
Slack Connect channel's outside members).

The same rule guards buttons, modals, Retry, App Home and thread replies. Answers from Slack
(auth.test, users.info, conversations.members) are kept for a short while, so a burst of clicks costs
one lookup; a change of membership counts within `ttl` seconds. When Slack cannot say, the answer is no.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from core.errors import NotAllowed, NotFound

GUEST = "Guests can't act on lead conversations: ask a full member of the workspace."
APP = "Only people can act on lead conversations."
GONE = "This Slack account is deactivated."
STRANGER = "Only members of this workspace can act on its lead conversations."
OUTSIDER = "Only people in <#{channel}> can act on its conversations: join the channel first."
UNKNOWN = "Threadline could not check with Slack who may act here ({why}): please try again."
MEMBERS_PAGE = 1000


class CouldNotCheck(NotAllowed):
    """Slack did not answer who someone is: not a no, a not-yet (stored events are tried again)."""


class Access:
    def __init__(self, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, Any]] = {}

    async def lookup(self, client: AsyncWebClient, user_id: str) -> dict[str, Any]:
        """Slack's record of the person (users.info), whoever they are; NotFound if Slack has none."""
        return await self._cached(f"user:{user_id}", lambda: self._fetch_user(client, user_id))

    async def user(self, client: AsyncWebClient, user_id: str) -> dict[str, Any]:
        """The person, checked to be a full member of this workspace; raises NotAllowed."""
        user = await self.lookup(client, user_id)
        if user.get("deleted"):
            raise NotAllowed(GONE)
        if user.get("is_bot") or user.get("is_app_user"):
            raise NotAllowed(APP)
        if user.get("is_restricted") or user.get("is_ultra_restricted"):
            raise NotAllowed(GUEST)
        team = await self._cached("workspace", lambda: self._fetch_team(client))
        if user.get("is_stranger") or (user.get("team_id") or team) != team:
            raise NotAllowed(STRANGER)
        return user

    async def in_channel(self, client: AsyncWebClient, user_id: str, channel: str) -> bool:
        members = await self._cached(f"members:{channel}", lambda: self._fetch_members(client, channel))
        return user_id in members

    async def require(self, client: AsyncWebClient, user_id: str, channel: str) -> dict[str, Any]:
        """The person, if they may act on a conversation in `channel`; raises NotAllowed otherwise."""
        user = await self.user(client, user_id)
        if not await self.in_channel(client, user_id, channel):
            raise NotAllowed(OUTSIDER.format(channel=channel))
        return user

    async def _cached(self, key: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            value = await fetch()
        except SlackApiError as exc:
            raise CouldNotCheck(UNKNOWN.format(why=exc.response.get("error"))) from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:  # the network, not Slack
            raise CouldNotCheck(UNKNOWN.format(why=type(exc).__name__)) from exc
        self._cache[key] = (now + self.ttl, value)
        return value

    @staticmethod
    async def _fetch_user(client: AsyncWebClient, user_id: str) -> dict[str, Any]:
        try:
            response = await client.users_info(user=user_id)
        except SlackApiError as exc:
            if exc.response.get("error") in {"user_not_found", "user_not_visible"}:
                raise NotFound(f"Slack user {user_id} is not known to this workspace") from exc
            raise
        user = response.get("user")
        if not isinstance(user, dict):
            raise NotFound(f"Slack user {user_id} is not known to this workspace")
        return user

    @staticmethod
    async def _fetch_team(client: AsyncWebClient) -> str:
        return str((await client.auth_test()).get("team_id") or "")

    @staticmethod
    async def _fetch_members(client: AsyncWebClient, channel: str) -> frozenset[str]:
        members: set[str] = set()
        cursor: str | None = None
        while True:
            args: dict[str, Any] = {"channel": channel, "limit": MEMBERS_PAGE}
            if cursor:
                args["cursor"] = cursor
            page = await client.conversations_members(**args)
            members.update(m for m in page.get("members") or [] if isinstance(m, str))
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return frozenset(members)
