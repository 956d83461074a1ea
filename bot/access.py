"""Who may act on a conversation (DESIGN §3): full members of the workspace who are in the Slack
channel the conversation lives in — not guests, not apps, not people from another organisation.

The same rule guards buttons, modals, Retry, App Home actions and thread replies. Answers from Slack
(users.info, conversations.members) are kept for a short while, so a burst of clicks costs one lookup;
a change of membership counts within `ttl` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.errors import NotAllowed, NotFound

GUEST = "Guests can't act on lead conversations: ask a full member of the workspace."
APP = "Only people can act on lead conversations."
GONE = "This Slack account is deactivated."
OUTSIDER = "Only people in <#{channel}> can act on its conversations: join the channel first."
MEMBERS_PAGE = 1000


class Access:
    def __init__(self, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._users: dict[str, tuple[float, dict[str, Any]]] = {}
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    async def lookup(self, client: AsyncWebClient, user_id: str) -> dict[str, Any]:
        """Slack's record of the person (users.info), whoever they are; NotFound if Slack has none."""
        return await self._cached(self._users, user_id, lambda: self._fetch_user(client, user_id))

    async def user(self, client: AsyncWebClient, user_id: str) -> dict[str, Any]:
        """Slack's record of the person, checked to be a full member of the workspace; raises NotAllowed."""
        user = await self.lookup(client, user_id)
        if user.get("deleted"):
            raise NotAllowed(GONE)
        if user.get("is_bot") or user.get("is_app_user"):
            raise NotAllowed(APP)
        if user.get("is_restricted") or user.get("is_ultra_restricted") or user.get("is_stranger"):
            raise NotAllowed(GUEST)
        return user

    async def in_channel(self, client: AsyncWebClient, user_id: str, channel: str) -> bool:
        members = await self._cached(self._members, channel, lambda: self._fetch_members(client, channel))
        return user_id in members

    async def require(self, client: AsyncWebClient, user_id: str, channel: str) -> dict[str, Any]:
        """The person, if they may act on a conversation in `channel`; raises NotAllowed otherwise."""
        user = await self.user(client, user_id)
        if not await self.in_channel(client, user_id, channel):
            raise NotAllowed(OUTSIDER.format(channel=channel))
        return user

    async def _cached(
        self, store: dict[str, tuple[float, Any]], key: str, fetch: Callable[[], Awaitable[Any]]
    ) -> Any:
        now = self.clock()
        hit = store.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await fetch()
        store[key] = (now + self.ttl, value)
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
