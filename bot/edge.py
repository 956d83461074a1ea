"""The Slack endpoint's guard: what reaches Bolt is signed by Slack, within its 5-minute window, UTF-8,
and shaped as Slack shapes it. Everything else is answered here — 401 unsigned, 400 malformed — with one
WARNING line, never a 500 or a traceback, whatever its bytes.

Bolt verifies the signature again; this guard exists because Bolt assumes well-formed input (an integer
timestamp, an ASCII signature, JSON objects where Slack sends objects) and answers 500 otherwise.

Message events do not go to Bolt at all: they are kept in the inbox (`keep_message`) and acknowledged,
so a teammate's reply is stored before anything is looked up — even while Slack itself is not
answering (Bolt's first-request auth.test would otherwise drop the event with a 200).

While the database is away every request here is answered 503 with Retry-After, so Slack sends it
again: message events through app/web.py's middleware, what Bolt runs through `database_away`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from sqlalchemy.exc import InterfaceError, OperationalError

log = logging.getLogger(__name__)

WINDOW_SECONDS = 300
MAX_NESTING = 64  # Slack's payloads nest a dozen levels at most


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def slack_events_endpoint(
    bolt: AsyncApp,
    *,
    signing_secret: str,
    keep_message: Callable[[dict[str, Any]], Awaitable[None]],
    clock: Callable[[], float] = time.time,
) -> Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]:
    """POST /slack/events (events, interactivity and slash commands), given the request's body."""

    async def slack_events(request: web.Request, body: bytes) -> web.StreamResponse:
        try:
            verify(signing_secret, body, request.headers, now=clock())
            text = _decode(body)
            envelope = check_shape(request.content_type, text)
        except Refused as refused:
            log.warning("Slack request refused (%d): %s", refused.status, refused.reason)
            return web.json_response({"ok": False, "error": refused.reason}, status=refused.status)
        if envelope is not None and envelope.get("type") == "event_callback":
            event = envelope.get("event")
            if isinstance(event, dict) and event.get("type") == "message":
                await keep_message(envelope)
                return web.Response(status=200)
        bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=dict(request.headers))
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    return slack_events


def database_away(error: Exception) -> BoltResponse | None:
    """What a listener that found the database away answers (the Bolt error handler asks): 503 with
    Retry-After and one WARNING line, as app/web.py answers webhooks — nothing was changed, so Slack's
    retry (or the teammate's next click) finds it working. Bolt's own answer would be a 500."""
    if not isinstance(error, OperationalError | InterfaceError):
        return None
    log.warning("POST /slack/events answered 503: database unavailable (%s)", type(error.orig).__name__)
    return BoltResponse(
        status=503,
        body='{"ok": false, "error": "database_unavailable"}',
        headers={"Content-Type": "application/json", "Retry-After": "5"},
    )


def verify(signing_secret: str, body: bytes, headers: Any, *, now: float) -> None:
    """`X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")`, timestamp within 5 minutes."""
    timestamp = headers.get("X-Slack-Request-Timestamp") or ""
    signature = headers.get("X-Slack-Signature") or ""
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Refused(401, "missing or non-numeric X-Slack-Request-Timestamp")
    if abs(now - int(timestamp)) > WINDOW_SECONDS:
        raise Refused(401, "X-Slack-Request-Timestamp outside the 5-minute window (a replay?)")
    expected = hmac.new(signing_secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    given = signature.encode("utf-8", "replace")
    if not hmac.compare_digest(b"v0=" + expected.hexdigest().encode(), given):
        raise Refused(401, "bad or missing X-Slack-Signature")


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(400, "body is not UTF-8") from exc


def check_shape(content_type: str, text: str) -> dict[str, Any] | None:
    """The envelope as Slack sends it: JSON events (returned, read), or a form with a JSON `payload` or
    a slash command."""
    if content_type == "application/json":
        envelope = _json(text)
        _check_payload(envelope)
        return envelope
    try:
        form = dict(urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    except ValueError as exc:
        raise Refused(400, "body is neither JSON nor a form") from exc
    if "payload" in form:
        _check_payload(_json(form["payload"]))
    elif not form.get("command", "").startswith("/") and form.get("ssl_check") != "1":
        raise Refused(400, "a form without a payload or a slash command")
    return None


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Refused(400, "malformed JSON") from exc
    if not isinstance(value, dict):
        raise Refused(400, f"JSON {type(value).__name__} where Slack sends an object")
    if _depth(value) > MAX_NESTING:
        raise Refused(400, "JSON nested deeper than Slack ever nests")
    return value


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node if isinstance(node, list) else ())
            if isinstance(child, dict | list)
        ]
        if depth > MAX_NESTING:
            break
    return depth


# The fields Bolt reads before any listener runs, with the types Slack gives them (when present).
_STRINGS = [
    "type",
    "token",
    "team_id",
    "enterprise_id",
    "api_app_id",
    "event_id",
    "user_id",
    "channel_id",
    "trigger_id",
    "response_url",
    "context_team_id",
    "context_enterprise_id",
    "thread_ts",
    "function_execution_id",
    "bot_access_token",
]
_OBJECTS_OR_IDS = ("team", "user", "channel", "enterprise")  # a dict with string ids, or an id
_OBJECTS = (
    "event",
    "view",
    "container",
    "message",
    "previous_message",
    "item",
    "assistant_thread",
    "function_data",
    "state",
)
_EVENT_STRINGS = [
    "type",
    "user",
    "user_id",
    "user_team",
    "team",
    "channel_type",
    "ts",
    "thread_ts",
    "event_ts",
    "subtype",
    "text",
    "bot_id",
]


# The payload types Threadline's manifest subscribes to; Slack sends no other kind to this app.
_TYPES = {
    "event_callback",
    "url_verification",
    "app_rate_limited",
    "block_actions",
    "view_submission",
    "view_closed",
}


def _check_payload(payload: dict[str, Any]) -> None:
    kind = payload.get("type")
    if not isinstance(kind, str):
        raise Refused(400, "payload has no type")
    if kind not in _TYPES:
        raise Refused(400, f"a {kind[:40]!r} payload, which this app does not subscribe to")
    _strings(payload, _STRINGS, "")
    for key in ("is_enterprise_install", "is_ext_shared_channel"):
        if key in payload and not isinstance(payload[key], bool | None):
            raise Refused(400, f"{key} is not a boolean")
    for key in _OBJECTS_OR_IDS:
        value = payload.get(key)
        if isinstance(value, dict):
            _strings(value, ("id", "team_id", "enterprise_id", "name"), f"{key}.")
        elif key in payload and not isinstance(value, str):
            raise Refused(400, f"{key} is neither an object nor an id")
    for key in _OBJECTS:
        if key in payload and not isinstance(payload[key], dict):
            raise Refused(400, f"{key} is not an object")
    event = payload.get("event")
    if kind == "event_callback" and not isinstance(event, dict):
        raise Refused(400, "an event callback without an event")
    if isinstance(event, dict):
        if not isinstance(event.get("type"), str):
            raise Refused(400, "event has no type")
        _strings(event, _EVENT_STRINGS, "event.")
        if "channel" in event and not isinstance(event["channel"], str | dict):
            raise Refused(400, "event.channel is neither an id nor an object")
        for key in ("message", "previous_message", "item", "assistant_thread"):
            if event.get(key) is not None and not isinstance(event[key], dict):
                raise Refused(400, f"event.{key} is not an object")
    authorizations = payload.get("authorizations")
    if authorizations is not None and not (
        isinstance(authorizations, list) and all(isinstance(a, dict) for a in authorizations)
    ):
        raise Refused(400, "authorizations is not a list of objects")
    for authorization in authorizations or []:
        _strings(authorization, ("team_id", "enterprise_id", "user_id"), "authorizations.")
    actions = payload.get("actions")
    if (kind == "block_actions" or actions is not None) and not (
        isinstance(actions, list)
        and actions
        and all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions)
    ):
        raise Refused(400, "actions is not a list of actions with an action_id")
    view = payload.get("view")
    if kind in {"view_submission", "view_closed"} and not (
        isinstance(view, dict)
        and isinstance(view.get("type"), str)
        and isinstance(view.get("callback_id"), str)
    ):
        raise Refused(400, "a view payload without a view type and callback_id")
    if isinstance(view, dict):
        _strings(
            view,
            ("id", "team_id", "app_installed_team_id", "callback_id", "private_metadata", "type"),
            "view.",
        )


def _strings(container: dict[str, Any], keys: Any, prefix: str) -> None:
    for key in keys:
        if key in container and container[key] is not None and not isinstance(container[key], str):
            raise Refused(400, f"{prefix}{key} is not a string")
