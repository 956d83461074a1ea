"""A strict stand-in for Slack's Web API, checked against the published method specs.

Every call is checked: the method exists, the token is the bot's, every required argument is present,
no argument is unknown, simple types match, and Block Kit is valid by slack_sdk's models (which enforce
Slack's length and count limits) and by the limits they miss (block_kit.py), with ≤ 50 blocks per
message and ≤ 100 per view. A failed check is recorded as a violation and answered with the error
Slack would give. State (channels, messages, threads, reactions, users, views) is kept so tests can
look at what a person in Slack would see.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from tests.standins.block_kit import block_problems, view_problems
from tests.standins.server import StandInServer

TEXT_LIMIT = 40_000
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
JSON_ARGS = {"blocks", "view", "metadata", "attachments", "files"}


@cache
def method_spec(specs_dir: Path, method: str) -> dict[str, Any] | None:
    path = specs_dir / f"{method}.json"
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]
    at: float
    ok: bool
    status: int = 200  # the HTTP status it was answered with


@dataclass
class Channel:
    id: str
    name: str
    bot_is_member: bool = True
    is_im: bool = False
    members: set[str] | None = None  # None: every person in the workspace (as in #general)

    def has_member(self, user_id: str) -> bool:
        return self.members is None or user_id in self.members


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    user: str
    bot_id: str | None = None
    thread_ts: str | None = None
    blocks: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    files: list[dict[str, Any]] | None = None  # a file share: the files as Slack describes them

    def as_api(self, *, with_metadata: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text, "user": self.user}
        if self.bot_id:
            data["bot_id"] = self.bot_id
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.blocks is not None:
            data["blocks"] = self.blocks
        if self.reactions:
            data["reactions"] = [{"name": n, "users": u, "count": len(u)} for n, u in self.reactions.items()]
        if with_metadata and self.metadata:
            data["metadata"] = self.metadata
        if self.files:
            data["subtype"] = "file_share"
            data["files"] = self.files
            data["upload"] = True
        return data


@dataclass
class StoredFile:
    """A file in the workspace: uploaded by the app (getUploadURLExternal → bytes → complete) or by a
    person (`add_file`)."""

    id: str
    name: str
    length: int  # what getUploadURLExternal was told
    user: str
    title: str = ""
    mimetype: str = "application/octet-stream"
    content: bytes | None = None  # None until the bytes reach the upload URL
    alt_txt: str | None = None
    completed: bool = False
    shares: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # channel → shares


class SlackApiFailure(Exception):
    def __init__(self, error: str, *, status: int = 200, violation: str | None = None) -> None:
        super().__init__(error)
        self.error, self.status, self.violation = error, status, violation


class SlackStandIn(StandInServer):
    name = "slack-standin"

    def __init__(
        self,
        specs_dir: Path,
        *,
        bot_token: str,
        app_token: str | None = None,
        team_id: str = "T0TEST",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        require_text_with_blocks: bool = True,
    ) -> None:
        super().__init__()
        self.specs_dir = specs_dir
        self.bot_token = bot_token
        self.app_token = app_token
        self.socket_acks: list[str] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._envelopes = itertools.count(1)
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.require_text_with_blocks = require_text_with_blocks
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.opened_views: list[dict[str, Any]] = []
        self.pushed_views: list[dict[str, Any]] = []  # views.push: on top of an open modal
        self.published_views: dict[str, dict[str, Any]] = {}
        self.responses: list[dict[str, Any]] = []  # what the app sent to a response_url, in order
        self._messages: dict[tuple[str, str], Message] = {}
        self._failures: dict[str, list[tuple[str, int]]] = {}
        self._down = False
        self._trouble_until = 0.0  # time.monotonic() until which calls get `_trouble`'s answers
        self._trouble: tuple[str, ...] = ()
        self._trouble_turn = itertools.count()
        self._retry_after = 1
        self._triggers: set[str] = set()
        self._used_triggers: set[str] = set()
        self._clock = itertools.count(1)
        self._view_ids = itertools.count(1)
        self.files: dict[str, StoredFile] = {}
        self._file_ids = itertools.count(1)
        self.downloads: list[str] = []  # file ids whose private URL the app fetched
        self.rate_limited: list[Call] = []  # posts answered 429 by the opt-in limit (limit_posts)
        self._post_limit: tuple[float, int, float] | None = None  # per second, burst, jitter
        self._post_buckets: dict[str, tuple[float, float]] = {}  # channel -> (tokens, at)

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_route("*", "/upload/{file_id}", self._upload)
        app.router.add_route("*", "/files-pri/{file_id}/{name}", self._download)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/response/{path:.*}", self._response)

    def url_for(self, port: int) -> str:
        return f"http://127.0.0.1:{port}/api/"

    def describe(self) -> str:
        return f"recent calls {[(c.method, c.ok) for c in self.calls[-10:]]}"

    # --- the workspace -------------------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str, *, bot_is_member: bool = True) -> None:
        self.channels[channel_id] = Channel(channel_id, name, bot_is_member)

    def add_user(
        self,
        user_id: str,
        name: str,
        real_name: str,
        *,
        email: str | None = None,
        is_bot: bool = False,
        guest: bool = False,
        deleted: bool = False,
        team_id: str | None = None,  # another organisation's, for a Slack Connect member
    ) -> None:
        profile = {"real_name": real_name, "display_name": real_name, "email": email}
        self.users[user_id] = {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": name,
            "real_name": real_name,
            "deleted": deleted,
            "is_bot": is_bot,
            "is_app_user": False,
            "is_restricted": guest,  # a multi-channel guest
            "is_ultra_restricted": False,
            "tz": "Europe/Lisbon",
            "profile": {k: v for k, v in profile.items() if v is not None},
        }
        # Posting to a user id lands in the app's DM with them.
        self.channels[user_id] = Channel(user_id, name, True, is_im=True)

    def set_members(self, channel_id: str, user_ids: set[str]) -> None:
        """Who is in the channel from now on (the bot stays in it)."""
        with self.changed:
            self.channels[channel_id].members = set(user_ids)

    def issue_trigger_id(self) -> str:
        trigger = f"{next(self._clock)}.{int(time.time())}.standin"
        self._triggers.add(trigger)
        return trigger

    def post_as_user(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> str:
        """A person writes in Slack; returns the ts Slack gave their message."""
        with self.changed:
            message = Message(channel, self._next_ts(), text, user, thread_ts=thread_ts)
            self._messages[(channel, message.ts)] = message
            self.changed.notify_all()
            return message.ts

    def add_file(self, user: str, name: str, mimetype: str, content: bytes) -> dict[str, Any]:
        """A person uploads a file (as a Slack client does); returns it as an event's `files` item."""
        with self.changed:
            stored = StoredFile(
                self._file_id(), name, len(content), user, name, mimetype, content, completed=True
            )
            self.files[stored.id] = stored
            return self._file_object(stored)

    def post_file_as_user(
        self, channel: str, user: str, text: str, files: list[dict[str, Any]], *, thread_ts: str
    ) -> str:
        """A person shares files (from `add_file`) in a thread, with `text`; returns the message ts."""
        with self.changed:
            message = Message(channel, self._next_ts(), text, user, thread_ts=thread_ts, files=files)
            self._messages[(channel, message.ts)] = message
            for item in files:
                self.files[item["id"]].shares.setdefault(channel, []).append(
                    {"ts": message.ts, "thread_ts": thread_ts}
                )
            self.changed.notify_all()
            return message.ts

    def thread_files(self, channel: str, thread_ts: str) -> list[tuple[dict[str, Any], StoredFile]]:
        """Each file share in a thread, in order: (the message, the file with its bytes)."""
        shown = []
        for message in self.replies(channel, thread_ts):
            for item in message.get("files") or []:
                with self.changed:
                    shown.append((message, self.files[item["id"]]))
        return shown

    def set_outage(self, down: bool) -> None:
        """While down, every Web API call answers 503, as during a Slack incident."""
        with self.changed:
            self._down = down

    def trouble_for(
        self, seconds: float, answers: tuple[str, ...] = ("429", "500", "502", "503"), *, retry_after: int = 1
    ) -> None:
        """For `seconds`, every Web API call that passes the checks gets the next of `answers` in turn,
        as during a Slack incident: "429" (ratelimited, with Retry-After), "500" (internal_error),
        "502" (a load balancer's HTML page, not JSON), "503" (service_unavailable)."""
        unknown = set(answers) - set(TROUBLE)
        assert answers and not unknown, f"no such answer {unknown}"
        with self.changed:
            self._trouble_until = time.monotonic() + seconds
            self._trouble = answers
            self._retry_after = retry_after

    @property
    def in_trouble(self) -> bool:
        return time.monotonic() < self._trouble_until

    def fail_next(self, method: str, error: str = "ratelimited", *, retry_after: int = 1) -> None:
        with self.changed:
            self._failures.setdefault(method, []).append((error, retry_after))

    def limit_posts(self, per_second: float = 1.0, burst: int = 5, *, jitter: float = 0.1) -> None:
        """Opt in to Slack's limit on chat.postMessage: about `per_second` per channel, short bursts
        allowed (Slack publishes no burst size; 5 is what the app assumes). A post over it is answered
        429 with Retry-After, as Slack does, and kept in `rate_limited`. The bucket may run `jitter`
        seconds' worth of tokens into debt, in all: posts paced exactly at the limit reach us with uneven
        delays, so some arrive a little early."""
        with self.changed:
            self._post_limit = (per_second, burst, jitter)
            self._post_buckets.clear()

    def _over_post_limit(self, channel: str) -> float:
        """0 if a post to `channel` is allowed now (and take its token); else the seconds to wait."""
        assert self._post_limit is not None
        per_second, burst, jitter = self._post_limit
        now = time.monotonic()
        tokens, at = self._post_buckets.get(channel, (float(burst), now))
        tokens = min(float(burst), tokens + (now - at) * per_second)
        if tokens + jitter * per_second >= 1:
            self._post_buckets[channel] = (tokens - 1, now)
            return 0.0
        self._post_buckets[channel] = (tokens, now)
        return (1 - tokens) / per_second

    # --- response_url (a slash command's or a click's) ------------------------------------------------

    def response_url(self, kind: str = "commands") -> str:
        """Where a payload's `response_url` should point: this stand-in, not hooks.slack.com."""
        return self.base_url.removesuffix("api/") + f"response/{kind}/{self.team_id}/1/abc"

    async def _response(self, request: web.Request) -> web.Response:
        """A message sent to a response_url: checked as chat.update checks it, then recorded."""
        try:
            payload = json.loads(await request.read())
        except ValueError:
            payload = None
        with self.changed:
            try:
                if not isinstance(payload, dict):
                    raise SlackApiFailure(
                        "invalid_payload", violation="response_url: body is not a JSON object"
                    )
                if not payload.get("text") and not payload.get("blocks"):
                    raise SlackApiFailure("no_text", violation="response_url: neither text nor blocks")
                if payload.get("blocks") is not None:
                    _check_blocks("response_url", payload["blocks"], MESSAGE_BLOCKS)
                text = payload.get("text")
                if isinstance(text, str) and len(text) > TEXT_LIMIT:
                    raise SlackApiFailure("msg_too_long", violation="response_url: text too long")
            except SlackApiFailure as failure:
                if failure.violation:
                    self.violations.append(failure.violation)
                self.changed.notify_all()
                return web.Response(status=400, text=failure.error)
            self.responses.append(payload)
            self.changed.notify_all()
        return web.Response(text="ok")

    # --- Socket Mode -------------------------------------------------------------------------------

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.base_url.replace("http://", "ws://").removesuffix("/api/") + "/socket"}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        await socket.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0THREADLINE"}}
        )
        with self.changed:
            self._sockets.append(socket)
            self.changed.notify_all()
        async for frame in socket:
            if frame.type.name == "TEXT":
                envelope_id = json.loads(frame.data).get("envelope_id")
                with self.changed:
                    self.socket_acks.append(envelope_id)
                    self.changed.notify_all()
        with self.changed:
            self._sockets.remove(socket)
        return socket

    @property
    def socket_connected(self) -> bool:
        with self.changed:
            return bool(self._sockets)

    def socket_send(self, kind: str, payload: dict[str, Any]) -> str:
        """Deliver an envelope over the open Socket Mode connection, as Slack does; returns its id."""
        envelope_id = f"env-{next(self._envelopes)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
        }
        with self.changed:
            socket = self._sockets[0]
        self.run_in_loop(socket.send_json(envelope))
        return envelope_id

    # --- what a person in Slack sees -----------------------------------------------------------------

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages, oldest first."""
        with self.changed:
            found = [m for (c, _), m in self._messages.items() if c == channel and not m.thread_ts]
            return [m.as_api(with_metadata=True) for m in sorted(found, key=lambda m: float(m.ts))]

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """A thread's replies, oldest first, without its parent."""
        with self.changed:
            found = [m for (c, _), m in self._messages.items() if c == channel and m.thread_ts == thread_ts]
            return [m.as_api(with_metadata=True) for m in sorted(found, key=lambda m: float(m.ts))]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        with self.changed:
            return self._messages[(channel, ts)].as_api(with_metadata=True)

    def reactions(self, channel: str, ts: str) -> dict[str, list[str]]:
        with self.changed:
            message = self._messages.get((channel, ts))
            return {name: list(users) for name, users in (message.reactions if message else {}).items()}

    def calls_to(self, method: str) -> list[Call]:
        with self.changed:
            return [call for call in self.calls if call.method == method]

    def post_times(self, channel: str) -> list[float]:
        return [c.at for c in self.calls_to("chat.postMessage") if c.ok and c.args.get("channel") == channel]

    # --- HTTP ----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args, token = await self._read_args(request)
        try:
            spec = method_spec(self.specs_dir, method)
            if spec is None:
                raise SlackApiFailure(
                    "unknown_method", status=404, violation=f"{method}: no such Web API method"
                )
            self._check_auth(method, token)
            self._check_args(method, spec, args)
            with self.changed:
                if self._down:
                    self._record(method, args, ok=False, status=503)
                    return web.json_response({"ok": False, "error": "service_unavailable"}, status=503)
                if time.monotonic() < self._trouble_until:
                    answer = self._trouble[next(self._trouble_turn) % len(self._trouble)]
                    self._record(method, args, ok=False, status=int(answer))
                    return TROUBLE[answer](self._retry_after)
                injected = self._failures.get(method)
                if injected:
                    error, retry_after = injected.pop(0)
                    self._record(method, args, ok=False, status=429 if error == "ratelimited" else 200)
                    if error == "ratelimited":
                        return web.json_response(
                            {"ok": False, "error": "ratelimited"},
                            status=429,
                            headers={"Retry-After": str(retry_after)},
                        )
                    return web.json_response({"ok": False, "error": error})
                if method == "chat.postMessage" and self._post_limit is not None:
                    wait = self._over_post_limit(str(args["channel"]))
                    if wait > 0:
                        self._record(method, args, ok=False, status=429)
                        self.rate_limited.append(self.calls[-1])
                        return web.json_response(
                            {"ok": False, "error": "ratelimited"},
                            status=429,
                            headers={"Retry-After": str(max(1, math.ceil(wait)))},
                        )
                result = getattr(self, "_" + method.replace(".", "_"))(args)
                self._record(method, args, ok=True)
            return web.json_response({"ok": True, **result})
        except SlackApiFailure as failure:
            with self.changed:
                if failure.violation:
                    self.violations.append(failure.violation)
                self._record(method, args, ok=False, status=failure.status)
            return web.json_response({"ok": False, "error": failure.error}, status=failure.status)

    def _record(self, method: str, args: dict[str, Any], *, ok: bool, status: int = 200) -> None:
        self.calls.append(Call(method, args, time.time(), ok, status))
        self.changed.notify_all()

    async def _read_args(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        args: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if raw:
            if request.content_type == "application/json":
                args.update(json.loads(raw))
            else:
                args.update(dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True)))
        for name in JSON_ARGS & args.keys():
            if isinstance(args[name], str):
                with contextlib.suppress(ValueError):  # left as a string: the checks report it
                    args[name] = json.loads(args[name])
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else args.get("token")
        return args, token

    def _check_auth(self, method: str, token: str | None) -> None:
        if not token:
            raise SlackApiFailure("not_authed", violation=f"{method}: no token")
        # Socket Mode connections are opened with the app-level token; everything else with the bot's.
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            raise SlackApiFailure("invalid_auth", violation=f"{method}: wrong token")

    def _check_args(self, method: str, spec: dict[str, Any], args: dict[str, Any]) -> None:
        schema = spec["args"]
        properties = schema.get("properties", {})
        missing = [name for name in schema.get("required", []) if name != "token" and name not in args]
        if missing:
            raise SlackApiFailure("invalid_arguments", violation=f"{method}: missing required {missing}")
        unknown = sorted(set(args) - set(properties))
        if "team_id" in unknown and args["team_id"] == self.team_id:
            # Bolt's per-request client adds the request's team_id to every call (for org-wide installs);
            # Slack accepts it on every method. Any other team, or any other extra argument, is wrong.
            unknown.remove("team_id")
            properties = {**properties, "team_id": {"type": "string"}}
        if unknown:
            raise SlackApiFailure("invalid_arguments", violation=f"{method}: unknown arguments {unknown}")
        for name, value in args.items():
            if not _type_ok(properties[name], value):
                raise SlackApiFailure(
                    "invalid_arguments", violation=f"{method}: {name}={value!r} has the wrong type"
                )
        if "blocks" in args and args["blocks"] is not None:
            _check_blocks(method, args["blocks"], MESSAGE_BLOCKS)
        if "view" in args:
            _check_view(method, args["view"])
        text = args.get("text")
        if isinstance(text, str) and len(text) > TEXT_LIMIT:
            raise SlackApiFailure("msg_too_long", violation=f"{method}: text longer than {TEXT_LIMIT}")
        if method in {"chat.postMessage", "chat.postEphemeral", "chat.update"}:
            if (
                not text
                and not args.get("blocks")
                and not args.get("attachments")
                and method != "chat.update"
            ):
                raise SlackApiFailure("no_text", violation=f"{method}: neither text nor blocks")
            if args.get("blocks") and not text and self.require_text_with_blocks:
                self.violations.append(f"{method}: blocks without a top-level text (missing_text_in_blocks)")

    # --- methods -------------------------------------------------------------------------------------

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._clock):06d}"

    def _channel(self, channel_id: str, *, post: bool = False) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise SlackApiFailure("channel_not_found")
        if post and not channel.bot_is_member:
            raise SlackApiFailure("not_in_channel")
        return channel

    def _stored(self, channel: str, ts: str) -> Message:
        message = self._messages.get((channel, ts))
        if message is None:
            raise SlackApiFailure("message_not_found")
        return message

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://threadline-test.slack.com/",
            "team": "Threadline Test",
            "user": "threadline",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"], post=True)
        thread_ts = args.get("thread_ts")
        if thread_ts and (channel.id, thread_ts) not in self._messages:
            raise SlackApiFailure("thread_not_found")
        message = Message(
            channel.id,
            self._next_ts(),
            args.get("text") or "",
            self.bot_user_id,
            self.bot_id,
            thread_ts,
            args.get("blocks"),
            args.get("metadata"),
        )
        self._messages[(channel.id, message.ts)] = message
        return {"channel": channel.id, "ts": message.ts, "message": message.as_api()}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._stored(self._channel(args["channel"]).id, args["ts"])
        if message.bot_id != self.bot_id:
            raise SlackApiFailure("cant_update_message")
        if "text" in args:
            message.text = args["text"] or ""
        if "blocks" in args:
            message.blocks = args["blocks"]
        if "metadata" in args:
            message.metadata = args["metadata"]
        return {
            "channel": message.channel,
            "ts": message.ts,
            "text": message.text,
            "message": message.as_api(),
        }

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"], post=True)
        if args["user"] not in self.users or not channel.has_member(args["user"]):
            raise SlackApiFailure("user_not_in_channel")
        self.ephemerals.append(args)
        return {"message_ts": self._next_ts()}

    def _chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._stored(self._channel(args["channel"]).id, args["message_ts"])
        return {
            "channel": message.channel,
            "permalink": f"https://threadline-test.slack.com/archives/{message.channel}/p{message.ts.replace('.', '')}",
        }

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._stored(self._channel(args["channel"]).id, args["timestamp"])
        users = message.reactions.setdefault(args["name"], [])
        if self.bot_user_id in users:
            raise SlackApiFailure("already_reacted")
        users.append(self.bot_user_id)
        return {}

    def _reactions_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._stored(self._channel(args["channel"]).id, args["timestamp"])
        users = message.reactions.get(args["name"], [])
        if self.bot_user_id not in users:
            raise SlackApiFailure("no_reaction")
        users.remove(self.bot_user_id)
        if not users:
            del message.reactions[args["name"]]
        return {}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(args["user"])
        if user is None:
            raise SlackApiFailure("user_not_found")
        return {"user": user}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"])
        return {
            "channel": {
                "id": channel.id,
                "name": channel.name,
                "is_channel": not channel.is_im,
                "is_im": channel.is_im,
                "is_member": channel.bot_is_member,
            }
        }

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"])
        people = sorted(u for u in self.users if not channel.is_im and channel.has_member(u))
        limit = int(args.get("limit") or 100)
        if not 1 <= limit <= 1000:
            raise SlackApiFailure("invalid_limit")
        start = int(args.get("cursor") or 0)
        more = start + limit < len(people)
        return {
            "members": people[start : start + limit],
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"])
        if not channel.bot_is_member:
            raise SlackApiFailure("not_in_channel")
        top = sorted(
            (m for (c, _), m in self._messages.items() if c == channel.id and not m.thread_ts),
            key=lambda m: -float(m.ts),
        )
        return self._page(top, args, lambda m: self._with_replies(m, args))

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"])
        parent = self._messages.get((channel.id, args["ts"]))
        if parent is None:
            raise SlackApiFailure("thread_not_found")
        replies = sorted(
            (m for (c, _), m in self._messages.items() if c == channel.id and m.thread_ts == parent.ts),
            key=lambda m: float(m.ts),
        )
        return self._page(
            [parent, *replies],
            args,
            lambda m: m.as_api(with_metadata=_flag(args.get("include_all_metadata"))),
        )

    def _with_replies(self, message: Message, args: dict[str, Any]) -> dict[str, Any]:
        data = message.as_api(with_metadata=_flag(args.get("include_all_metadata")))
        count = sum(
            1 for m in self._messages.values() if m.channel == message.channel and m.thread_ts == message.ts
        )
        if count:
            data.update({"thread_ts": message.ts, "reply_count": count})
        return data

    @staticmethod
    def _page(
        items: list[Message], args: dict[str, Any], render: Callable[[Message], dict[str, Any]]
    ) -> dict[str, Any]:
        limit = int(args.get("limit") or 100)
        start = int(args.get("cursor") or 0)
        page = items[start : start + limit]
        more = start + limit < len(items)
        return {
            "messages": [render(m) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    # --- files ---------------------------------------------------------------------------------------

    def _file_id(self) -> str:
        return f"F{next(self._file_ids):08d}"

    def _file_object(self, stored: StoredFile) -> dict[str, Any]:
        root = self.base_url.removesuffix("api/")
        url = f"{root}files-pri/{stored.id}/{urllib.parse.quote(stored.name)}"
        data: dict[str, Any] = {
            "id": stored.id,
            "name": stored.name,
            "title": stored.title or stored.name,
            "mimetype": stored.mimetype,
            "size": len(stored.content or b""),
            "user": stored.user,
            "mode": "hosted",
            "is_external": False,
            "url_private": url,
            "url_private_download": url + "?download=1",
            "shares": {"public": {c: list(s) for c, s in stored.shares.items()}} if stored.shares else {},
            "channels": sorted(stored.shares),
        }
        if stored.alt_txt:
            data["alt_txt"] = stored.alt_txt
        return data

    def _files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        length = int(args["length"])
        if length < 1:
            raise SlackApiFailure("invalid_arguments", violation="files.getUploadURLExternal: length < 1")
        stored = StoredFile(self._file_id(), args["filename"], length, self.bot_user_id, args["filename"])
        stored.alt_txt = args.get("alt_txt")
        self.files[stored.id] = stored
        return {
            "upload_url": self.base_url.removesuffix("api/") + f"upload/{stored.id}",
            "file_id": stored.id,
        }

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL: the file's bytes, exactly as many as getUploadURLExternal was told."""
        raw = await request.read()
        with self.changed:
            stored = self.files.get(request.match_info["file_id"])
            problem = None
            if request.method != "POST":
                problem = f"upload URL: {request.method}, expected POST"
            elif stored is None or stored.completed:
                problem = "upload URL: no upload is waiting for this file"
            elif len(raw) != stored.length:
                problem = f"upload URL: {len(raw)} bytes, getUploadURLExternal was told {stored.length}"
            if problem is not None:
                self.violations.append(problem)
                self.changed.notify_all()
                return web.Response(status=400, text=problem)
            assert stored is not None
            stored.content = raw
            self.changed.notify_all()
        return web.Response(text=f"OK - {len(raw)}")

    async def _download(self, request: web.Request) -> web.Response:
        """A file's private URL: only with the bot token, as Slack requires."""
        with self.changed:
            stored = self.files.get(request.match_info["file_id"])
            if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
                self.violations.append("file download without the bot token")
                self.changed.notify_all()
                return web.Response(status=302, headers={"Location": "/signin"})  # Slack's login page
            if stored is None or stored.content is None:
                return web.Response(status=404)
            self.downloads.append(stored.id)
            self.changed.notify_all()
            return web.Response(body=stored.content, content_type=stored.mimetype)

    def _files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args["files"]
        if not isinstance(items, list) or not items:
            raise SlackApiFailure("invalid_arguments", violation="files.completeUploadExternal: files")
        if "thread_ts" in args and "channel_id" not in args:
            raise SlackApiFailure(
                "invalid_arguments", violation="files.completeUploadExternal: thread_ts without channel_id"
            )
        stored_files = []
        for item in items:
            stored = self.files.get(item.get("id", ""))
            if stored is None or stored.content is None or stored.completed:
                raise SlackApiFailure("file_not_found")
            stored_files.append(stored)
        for item, stored in zip(items, stored_files, strict=True):
            stored.completed = True
            stored.title = item.get("title") or stored.name
        channel_id = args.get("channel_id")
        if channel_id:
            channel = self._channel(channel_id, post=True)
            thread_ts = args.get("thread_ts")
            parent = self._messages.get((channel.id, thread_ts)) if thread_ts else None
            if thread_ts and (parent is None or parent.thread_ts):
                raise SlackApiFailure(
                    "invalid_arguments",
                    violation=f"files.completeUploadExternal: thread_ts {thread_ts} is not a thread's parent",
                )
            message = Message(  # as Slack's file_share event has it: our bot user, no bot_id
                channel.id,
                self._next_ts(),
                args.get("initial_comment") or "",
                self.bot_user_id,
                None,
                thread_ts,
            )
            for stored in stored_files:
                stored.shares.setdefault(channel.id, []).append(
                    {"ts": message.ts, **({"thread_ts": thread_ts} if thread_ts else {})}
                )
            message.files = [self._file_object(stored) for stored in stored_files]
            self._messages[(channel.id, message.ts)] = message
        return {"files": [{"id": f.id, "title": f.title} for f in stored_files]}

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        stored = self.files.get(args["file"])
        if stored is None or not stored.completed:
            raise SlackApiFailure("file_not_found")
        return {"file": self._file_object(stored), "comments": []}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        self._use_trigger("views.open", args)
        self.opened_views.append(args["view"])
        return {"view": {"id": f"V{next(self._view_ids):08d}", **args["view"]}}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        self._use_trigger("views.push", args)
        self.pushed_views.append(args["view"])
        return {"view": {"id": f"V{next(self._view_ids):08d}", **args["view"]}}

    def _use_trigger(self, method: str, args: dict[str, Any]) -> None:
        trigger = args.get("trigger_id")
        if not trigger:
            raise SlackApiFailure("invalid_arguments", violation=f"{method}: no trigger_id")
        if trigger in self._used_triggers:
            raise SlackApiFailure("exchanged_trigger_id")
        if trigger not in self._triggers:
            raise SlackApiFailure("invalid_trigger_id")
        self._used_triggers.add(trigger)

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        self.published_views[args["user_id"]] = args["view"]
        return {"view": {"id": f"V{next(self._view_ids):08d}", **args["view"]}}


# What Slack answers during an incident (trouble_for), by HTTP status.
TROUBLE: dict[str, Callable[[int], web.Response]] = {
    "429": lambda wait: web.json_response(
        {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(wait)}
    ),
    "500": lambda _: web.json_response({"ok": False, "error": "internal_error"}, status=500),
    "502": lambda _: web.Response(
        status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"
    ),
    "503": lambda _: web.json_response({"ok": False, "error": "service_unavailable"}, status=503),
}


def _flag(value: Any) -> bool:
    return value in (True, "true", "1", 1)


def _type_ok(prop: dict[str, Any], value: Any) -> bool:
    types = [prop["type"]] if "type" in prop else [option.get("type") for option in prop.get("anyOf", [])]
    types = [t for t in types if t]
    if not types:
        return True
    for kind in types:
        if kind == "null" and value is None:
            return True
        if kind == "string" and isinstance(value, str | dict | list):  # JSON args arrive decoded
            return True
        if kind == "boolean" and (isinstance(value, bool) or value in {"true", "false", "1", "0"}):
            return True
        if kind in {"integer", "number"} and (
            (isinstance(value, int | float) and not isinstance(value, bool))
            or (isinstance(value, str) and value.replace(".", "", 1).isdigit())
        ):
            return True
        if kind == "object" and isinstance(value, dict):
            return True
        if kind == "array" and isinstance(value, list):
            return True
    return False


def _check_blocks(method: str, blocks: Any, limit: int) -> None:
    if not isinstance(blocks, list):
        raise SlackApiFailure("invalid_blocks_format", violation=f"{method}: blocks is not a JSON array")
    if len(blocks) > limit:
        raise SlackApiFailure(
            "invalid_blocks", violation=f"{method}: {len(blocks)} blocks, more than {limit}"
        )
    for block in blocks:
        try:
            parsed = Block.parse(block)
            if parsed is None or type(parsed) is Block:
                raise SlackObjectFormationError(f"unknown block type {block.get('type')!r}")
            parsed.to_dict()
        except (SlackObjectFormationError, TypeError, KeyError, AttributeError) as exc:
            raise SlackApiFailure(
                "invalid_blocks", violation=f"{method}: invalid block {block}: {exc}"
            ) from exc
    problem = next(block_problems(blocks), None)
    if problem is not None:
        raise SlackApiFailure("invalid_blocks", violation=f"{method}: {problem}")


def _check_view(method: str, view: Any) -> None:
    if not isinstance(view, dict):
        raise SlackApiFailure("invalid_arguments", violation=f"{method}: view is not a JSON object")
    _check_blocks(method, view.get("blocks", []), VIEW_BLOCKS)
    problem = next(view_problems(view), None)
    if problem is not None:
        raise SlackApiFailure("invalid_arguments", violation=f"{method}: invalid view: {problem}")
    try:
        View(**view).to_dict()
    except (SlackObjectFormationError, TypeError) as exc:
        raise SlackApiFailure("invalid_arguments", violation=f"{method}: invalid view: {exc}") from exc
