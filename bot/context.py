"""What the Slack handlers need from the rest of Threadline, passed in rather than imported."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.orm import Session

from bot.access import Access
from core.actions.common import Actor
from core.actions.members import do_register_member
from core.db import Database
from core.models import Member
from core.ports import Template
from core.queries.lookup import find_member

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotContext:
    db: Database
    ai_available: bool  # an AI agent runs on this server
    # Every Web API call goes through this one client, not Bolt's per-request one: that one copies the
    # request's team_id into each call, and what a request says must not steer where our calls go.
    client: AsyncWebClient
    access: Access = field(default_factory=Access)
    csat: bool = False  # THREADLINE_CSAT: closing asks the lead for a rating
    # By lead channel: the templates a rep may send once its reply window is closed (Send template).
    templates: Mapping[str, Sequence[Template]] = field(default_factory=dict)
    # Keeps one verified delivery in the inbox (source, raw bytes, dedupe key) and wakes its runner.
    keep: Callable[[str, bytes, str | None], None] = lambda source, body, key: None

    async def store(self, source: str, body: bytes, key: str | None) -> None:
        await asyncio.to_thread(self.keep, source, body, key)

    async def run(self, use_case: Callable[[Session], T]) -> T:
        """Run a use-case in its transaction without blocking the event loop."""
        return await asyncio.to_thread(self.db.run, use_case)

    async def read(self, query: Callable[[Session], T]) -> T:
        def in_session() -> T:
            with self.db.sessions() as session:
                return query(session)

        return await asyncio.to_thread(in_session)

    async def actor(self, client: AsyncWebClient, slack_user_id: str, slack_channel: str) -> Actor:
        """The teammate acting on a conversation in `slack_channel`; NotAllowed if they may not."""
        return Actor.member(await self.member(client, slack_user_id, slack_channel))

    async def member(self, client: AsyncWebClient, slack_user_id: str, slack_channel: str) -> Member:
        """The teammate, registered on first sight (or refreshed when Slack's name changed)."""
        user = await self.access.require(client, slack_user_id, slack_channel)
        name, email = display_name(user), (user.get("profile") or {}).get("email")
        known = await self.read(lambda session: find_member(session, slack_user_id))
        if known is not None and known.name == name and (known.email == email or email is None):
            return known
        return await self.run(
            lambda session: do_register_member(session, slack_user_id, name=name, email=email)
        )


def display_name(user: dict[str, Any]) -> str:
    profile = user.get("profile") or {}
    for candidate in (
        profile.get("display_name"),
        user.get("real_name"),
        profile.get("real_name"),
        user.get("name"),
    ):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return str(user.get("id") or "someone")


async def tell(client: AsyncWebClient, *, channel: str, user: str, thread_ts: str | None, text: str) -> None:
    """A private note to one person, in the thread they acted in — or by DM when they are not in the
    channel (someone outside it clicked). Best effort: the action itself already succeeded or not."""
    try:
        await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text)
        return
    except SlackApiError as exc:
        if exc.response.get("error") not in {"user_not_in_channel", "channel_not_found", "not_in_channel"}:
            log.warning("could not tell %s privately: %s", user, exc.response.get("error"))
            return
    except Exception as exc:  # the network: telling is best effort, never a reason to fail the work
        log.warning("could not tell %s privately: %s", user, type(exc).__name__)
        return
    try:
        await client.chat_postMessage(channel=user, text=text)
    except SlackApiError as exc:
        log.warning("could not tell %s by DM either: %s", user, exc.response.get("error"))
    except Exception as exc:
        log.warning("could not tell %s by DM either: %s", user, type(exc).__name__)
