"""The one way workers talk to Slack's Web API: paced without waiting, and able to find lost posts.

Pacing: chat.postMessage is held to THREADLINE_SLACK_POSTS_PER_SECOND per channel with bursts of
THREADLINE_SLACK_POST_BURST, in a token bucket shared by all workers (Redis when present). Nobody sleeps
on it: a post the bucket does not allow yet, or a 429 that gets through anyway, raises `Deferred` with
the wait, and the outbox reschedules the work for then. Urgent posts (a new card, a conversation that
is not a backlog) may use the token the bucket keeps in reserve.

Errors that mean the Slack connection itself needs a person (the app removed from the channel, the
token revoked, a scope missing) raise `SlackBroken`, which the caller records and waits out.

Lost posts: a post whose answer never arrived (crash, timeout) may still have landed. Every message we
post carries metadata naming what it is, so the retry looks for it before posting again.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from core.coordination import Coordinator
from core.errors import Deferred, PermanentDelivery, RetryableDelivery, Unrecoverable
from core.metrics import SLACK_ERRORS, SLACK_SECONDS, error_kind, rate_limited
from core.ports import MAX_FILE_BYTES, FetchedFile

log = logging.getLogger(__name__)

HISTORY_PAGES = 5  # how far back (pages of 200 messages) to look for a post whose answer was lost
WORKSPACE = "workspace"  # what a broken token or scope breaks: every channel
CHANNEL_BROKEN = {"channel_not_found", "is_archived", "not_in_channel"}
WORKSPACE_BROKEN = {"invalid_auth", "account_inactive", "missing_scope", "token_revoked", "not_authed"}


# Slack refuses the content itself: sending it again can never work.
REFUSED = {
    "invalid_name",  # reactions.add: no emoji by that name (a lead's reaction then shows as a line)
    "invalid_blocks",
    "invalid_blocks_format",
    "msg_too_long",
    "no_text",
    "invalid_metadata",
    "metadata_too_large",
    "too_many_attachments",
    "invalid_arguments",
    "user_disabled",
    "cannot_dm_bot",
    "user_not_found",
    # a file Slack will not keep: its type, its size, or uploads turned off in the workspace
    "file_type_not_allowed",
    "file_upload_size_restricted",
    "file_uploads_disabled",
    "file_uploads_except_images_disabled",
    "storage_limit_reached",
    "alt_txt_too_large",
}
UPLOAD_TIMEOUT = 120.0  # seconds for the bytes of one file (up to MAX_FILE_BYTES) to reach Slack


class MeteredWebClient(WebClient):
    """slack_sdk's client, each Web API call timed and its failure counted by method (/metrics)."""

    def api_call(self, api_method: str, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().api_call(api_method, **options)
        except Exception as exc:
            SLACK_ERRORS.labels(api_method, slack_error(exc)).inc()
            raise
        finally:
            SLACK_SECONDS.labels(api_method).observe(time.perf_counter() - started)


class MeteredAsyncWebClient(AsyncWebClient):
    """The same for the web process's async client (the Slack handlers' views, ephemeral answers…)."""

    async def api_call(self, api_method: str, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().api_call(api_method, **options)
        except Exception as exc:
            SLACK_ERRORS.labels(api_method, slack_error(exc)).inc()
            raise
        finally:
            SLACK_SECONDS.labels(api_method).observe(time.perf_counter() - started)


def slack_error(exc: BaseException) -> str:
    """A failed call in an alert's words: Slack's own error code, or what kept its answer away."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200)
        if status == 429:
            return "ratelimited"
        if isinstance(status, int) and status >= 500:
            return "server_error"
        error = str(exc.response.get("error") or "")
        return error if _SLACK_CODE.fullmatch(error) else "invalid_response"
    return error_kind(exc)  # timeout, unreachable…


_SLACK_CODE = re.compile(r"[a-z_]{1,60}")


class SlackRefused(Unrecoverable):
    """Slack will never take this call as it is (`error` says why)."""

    def __init__(self, error: str) -> None:
        super().__init__(f"Slack refused it: {error}")
        self.error = error


class SlackBroken(Exception):
    """Slack refuses us in a way only a person can fix; `where` is a channel id or WORKSPACE."""

    def __init__(self, where: str, error: str) -> None:
        super().__init__(f"Slack answered {error} for {where}")
        self.where = where
        self.error = error


class SlackGateway:
    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        coordinator: Coordinator,
        posts_per_second: float = 1.0,
        burst: int = 4,
    ) -> None:
        self.client = MeteredWebClient(
            token=token,
            base_url=base_url,
            timeout=15,
            # Nothing is retried in here: a 429 becomes Deferred, and retrying a post after a broken
            # connection could post it twice (the mirror looks for it first).
            retry_handlers=[],
        )
        self.coordinator = coordinator
        self._calls = threading.local()
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
        paced: bool = False,
    ) -> str:
        """Post a message; `paced` says the caller already took its token with `pace`."""
        if not paced:
            self.pace(channel)
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
        response = self._call("chat_postMessage", channel, **args)
        return str(response["ts"])

    def pace(self, channel: str, *, urgent: bool = True) -> None:
        """Take a posting token for `channel`, or raise Deferred with the wait (nothing is posted)."""
        wait = self.coordinator.take_token(
            f"post:{channel}", rate=self.posts_per_second, burst=self.burst, reserve=0 if urgent else 1
        )
        if wait > 0:
            rate_limited("slack", "pace", wait)
            raise Deferred(wait, f"Slack's posting pace in {channel}")

    def update(self, channel: str, ts: str, *, text: str, blocks: list[dict[str, Any]]) -> None:
        self._call("chat_update", channel, channel=channel, ts=ts, text=text, blocks=blocks)

    def react(self, channel: str, ts: str, name: str) -> None:
        # Already marked, or the message was deleted in Slack since: either way nothing left to do.
        self._call(
            "reactions_add",
            channel,
            channel=channel,
            timestamp=ts,
            name=name,
            fine={"already_reacted", "message_not_found"},
        )

    def unreact(self, channel: str, ts: str, name: str) -> None:
        self._call(
            "reactions_remove",
            channel,
            channel=channel,
            timestamp=ts,
            name=name,
            fine={"no_reaction", "message_not_found"},
        )

    # --- files: Slack's upload flow (files.getUploadURLExternal → POST the bytes → complete) ---------

    def start_upload(self, filename: str, length: int, *, alt_text: str | None = None) -> tuple[str, str]:
        """Ask Slack where to send a file's bytes: (upload URL, the file's id)."""
        answer = self._call(
            "files_getUploadURLExternal", WORKSPACE, filename=filename, length=length, alt_txt=alt_text
        )
        return str(answer["upload_url"]), str(answer["file_id"])

    def send_upload(self, upload_url: str, content: bytes) -> None:
        """The file's bytes, to the URL `start_upload` gave; anything but 200 is retried by the caller."""
        response = httpx.post(upload_url, content=content, timeout=UPLOAD_TIMEOUT)
        if response.status_code != 200:
            raise RuntimeError(f"Slack's upload URL answered {response.status_code}")

    def complete_upload(
        self, file_id: str, *, title: str, channel: str, thread_ts: str, comment: str | None = None
    ) -> None:
        """Share an uploaded file into a thread (a message of its own, with `comment` as its text)."""
        self._call(
            "files_completeUploadExternal",
            channel,
            files=[{"id": file_id, "title": title}],
            channel_id=channel,
            thread_ts=thread_ts,
            initial_comment=comment,
        )

    def file_shared(self, file_id: str, channel: str, thread_ts: str) -> bool:
        """Whether Slack shows the file in that thread (an upload whose completion we never heard of)."""
        answer = self._call("files_info", channel, file=file_id, fine={"file_not_found", "file_deleted"})
        if answer is None:
            return False
        shares = (answer.get("file") or {}).get("shares") or {}
        for where in ("public", "private"):
            for share in (shares.get(where) or {}).get(channel) or []:
                if share.get("thread_ts") == thread_ts or share.get("ts") == thread_ts:
                    return True
        return False

    def download(self, file_id: str, *, max_bytes: int = MAX_FILE_BYTES) -> FetchedFile:
        """A teammate's file from Slack (files.info → url_private_download with the bot token), for
        core's deliverer; Slack's failures as core's kinds: the file gone or too big → PermanentDelivery,
        anything that may pass (rate limit, outage, the connection) → RetryableDelivery."""
        try:
            about = self._call("files_info", WORKSPACE, file=file_id)["file"]
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error in {"file_not_found", "file_deleted", "not_visible", "access_denied"}:
                raise PermanentDelivery(f"Slack no longer gives this file ({error})") from None
            raise RetryableDelivery(f"Slack did not give the file ({error or 'no answer'})") from None
        except (SlackBroken, SlackRefused) as exc:
            raise RetryableDelivery(f"Slack did not give the file ({exc})") from None
        except (OSError, SlackClientError) as exc:
            raise RetryableDelivery(f"Slack could not be reached ({type(exc).__name__})") from None
        name, mime_type = str(about.get("name") or "file"), str(about.get("mimetype") or "")
        size = about.get("size")
        if isinstance(size, int) and size > max_bytes:
            raise PermanentDelivery(_too_big(name, size, max_bytes))
        url = about.get("url_private_download") or about.get("url_private")
        if not isinstance(url, str) or about.get("mode") in {"external", "snippet", "post"}:
            raise PermanentDelivery(f"{name} is not a file Slack keeps (an external link or a post)")
        return FetchedFile(
            name, mime_type or "application/octet-stream", self._fetch_private(url, name, max_bytes)
        )

    def _fetch_private(self, url: str, name: str, max_bytes: int) -> bytes:
        headers = {"Authorization": f"Bearer {self.client.token}"}
        try:
            with httpx.stream("GET", url, headers=headers, timeout=UPLOAD_TIMEOUT) as response:
                if response.status_code != 200:  # Slack answers a sign-in page (302) to a missing token
                    raise RetryableDelivery(f"Slack answered {response.status_code} for {name}")
                chunks, got = [], 0
                for chunk in response.iter_bytes():
                    got += len(chunk)
                    if got > max_bytes:
                        raise PermanentDelivery(_too_big(name, got, max_bytes))
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise RetryableDelivery(f"Slack's download of {name} broke off ({type(exc).__name__})") from None
        return b"".join(chunks)

    def _call(
        self, method: str, where: str, *, fine: frozenset[str] | set[str] = frozenset(), **args: Any
    ) -> Any:
        """One Web API call, Slack's refusals turned into what the outbox acts on."""
        try:
            result = getattr(self.client, method)(**args)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error in fine:
                self._answered()
                return None
            if exc.response.status_code == 429:
                retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get(
                    "retry-after"
                )
                rate_limited("slack", "retry_after", _seconds(retry_after))
                raise Deferred(_seconds(retry_after), "Slack asked us to slow down (429)") from None
            if error in CHANNEL_BROKEN:
                raise SlackBroken(where, error) from None
            if error in WORKSPACE_BROKEN:
                raise SlackBroken(WORKSPACE, error) from None
            if error in REFUSED:
                raise SlackRefused(error) from None
            raise
        self._answered()
        return result

    def answered(self) -> int:
        """How many calls Slack answered for this thread: proof, for the caller, that Slack works."""
        return int(getattr(self._calls, "answered", 0))

    def _answered(self) -> None:
        self._calls.answered = self.answered() + 1

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
                page = self._call("conversations_history", channel, **args)
            else:
                page = self._call("conversations_replies", channel, ts=thread_ts, **args)
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
        return str(self._call("chat_getPermalink", channel, channel=channel, message_ts=ts)["permalink"])

    def auth_test(self) -> dict[str, Any]:
        return dict(self.client.auth_test().data)  # type: ignore[arg-type]

    def channel_info(self, channel: str) -> dict[str, Any]:
        return dict(self.client.conversations_info(channel=channel)["channel"])


def _too_big(name: str, size: int, limit: int) -> str:
    return f"{name} is {size / 1_048_576:.1f} MB, more than the {limit // 1_048_576} MB Threadline sends"


def _seconds(retry_after: object) -> float:
    try:
        seconds = float(str(retry_after))
    except ValueError:
        return 30.0  # Slack always says; if not, a cautious pause
    return min(max(1.0, seconds), 3600.0) if seconds == seconds else 30.0  # NaN is not a wait
