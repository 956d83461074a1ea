"""The one way workers talk to Slack's Web API: paced, retried on 429, and able to find lost posts.

Pacing: chat.postMessage is held to THREADLINE_SLACK_POSTS_PER_SECOND per channel with bursts of
THREADLINE_SLACK_POST_BURST, in a token bucket shared by all workers (Redis when present). A 429 that
gets through anyway is retried after Slack's Retry-After by slack_sdk's handler.

Lost posts: a post whose answer never arrived (crash, timeout) may still have landed. Every message we
post carries metadata naming what it is, so the retry looks for it before posting again.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from core.coordination import Coordinator, wait_for_token

log = logging.getLogger(__name__)

HISTORY_PAGES = 5  # how far back (pages of 200 messages) to look for a post whose answer was lost


class SlackGateway:
    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        coordinator: Coordinator,
        posts_per_second: float = 1.0,
        burst: int = 5,
    ) -> None:
        self.client = WebClient(
            token=token,
            base_url=base_url,
            timeout=15,
            # Only 429s are retried here: retrying a post after a broken connection could post it twice.
            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=5)],
        )
        self.coordinator = coordinator
        self.posts_per_second = posts_per_second
        self.burst = burst

    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        wait_for_token(self.coordinator, f"post:{channel}", rate=self.posts_per_second, burst=self.burst)
        args: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if blocks is not None:
            args["blocks"] = blocks
        if thread_ts is not None:
            args["thread_ts"] = thread_ts
        if metadata is not None:
            args["metadata"] = metadata
        response = self.client.chat_postMessage(**args)
        return str(response["ts"])

    def update(self, channel: str, ts: str, *, text: str, blocks: list[dict[str, Any]]) -> None:
        self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)

    def react(self, channel: str, ts: str, name: str) -> None:
        try:
            self.client.reactions_add(channel=channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            # Already marked, or the message was deleted in Slack since: either way nothing left to do.
            if exc.response.get("error") not in {"already_reacted", "message_not_found"}:
                raise

    def unreact(self, channel: str, ts: str, name: str) -> None:
        try:
            self.client.reactions_remove(channel=channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            if exc.response.get("error") not in {"no_reaction", "message_not_found"}:
                raise

    def find_posted(
        self, channel: str, *, event_type: str, key: str, value: int, thread_ts: str | None = None
    ) -> str | None:
        """The ts of a message we posted with metadata `{key: value}`, if Slack has it."""
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            args: dict[str, Any] = {"channel": channel, "include_all_metadata": True, "limit": 200}
            if cursor:
                args["cursor"] = cursor
            if thread_ts is None:
                page = self.client.conversations_history(**args)
            else:
                page = self.client.conversations_replies(ts=thread_ts, **args)
            messages: list[dict[str, Any]] = page.get("messages", [])
            for message in messages:
                metadata = message.get("metadata") or {}
                if (
                    metadata.get("event_type") == event_type
                    and (metadata.get("event_payload") or {}).get(key) == value
                ):
                    return str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    def permalink(self, channel: str, ts: str) -> str:
        return str(self.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])

    def auth_test(self) -> dict[str, Any]:
        return dict(self.client.auth_test().data)  # type: ignore[arg-type]

    def channel_info(self, channel: str) -> dict[str, Any]:
        return dict(self.client.conversations_info(channel=channel)["channel"])
