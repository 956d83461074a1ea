"""A strict stand-in for Meta's Graph API (WhatsApp Cloud API), checked against the published spec.

Every send is validated against the spec's request schema for `POST /{Version}/{Phone-Number-ID}/messages`
(picked by the `type` discriminator). The spec's message schemas put `additionalProperties: false` in
one `allOf` branch, which would reject every valid message under plain JSON Schema rules; we merge the
`allOf` branches first — the reading Meta evidently intends — and validate the result.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from aiohttp import web
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.standins.graph_media import GraphMedia
from tests.standins.server import StandInServer

SEND_PATH = "/{Version}/{Phone-Number-ID}/messages"


@cache
def load_spec(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@dataclass(frozen=True)
class SentMessage:
    to: str
    type: str
    body: dict[str, Any]
    message_id: str
    at: float


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any
    status: int


class GraphStandIn(StandInServer, GraphMedia):
    name = "graph-standin"

    def __init__(
        self, spec_path: Path, *, access_token: str, phone_number_id: str, version: str = "v23.0"
    ) -> None:
        super().__init__()
        self.spec = load_spec(spec_path)
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.version = version
        self.sent: list[SentMessage] = []
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self._failures: list[tuple[int, int, str, str]] = []
        self._drops = 0
        self._lost_answers = 0
        self._ids = itertools.count(1)
        registry = Registry().with_resource(
            "spec", Resource.from_contents(self.spec, default_specification=DRAFT202012)
        )
        self._registry = registry
        self.init_media()

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    def url_for(self, port: int) -> str:
        return f"http://127.0.0.1:{port}/{self.version}"

    def describe(self) -> str:
        return f"sent={self.sent} calls={self.calls[-5:]}"

    # --- test controls -------------------------------------------------------------------------------

    def fail_next(
        self, code: int, *, http_status: int = 400, message: str | None = None, details: str = ""
    ) -> None:
        """The next send gets Graph's error for `code` (not a violation: providers do fail)."""
        default = {
            131047: "Re-engagement message",
            131026: "Message undeliverable",
            130429: "Rate limit hit",
            131000: "Something went wrong",
        }.get(code, "Error")
        with self.changed:
            self._failures.append((code, http_status, message or default, details))

    def drop_next(self) -> None:
        """Close the next connection without an answer, as a network failure would."""
        with self.changed:
            self._drops += 1

    def lose_answer_next(self, count: int = 1) -> None:
        """The next `count` sends are taken (in `sent`), but the connection closes before the answer:
        the sender cannot know whether the message went, as after a read timeout."""
        with self.changed:
            self._lost_answers += count

    # --- the API -------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        with self.changed:
            drop = self._drops > 0
            self._drops -= drop
        if drop:
            request.transport.close()  # type: ignore[union-attr]
            return web.Response(status=500)
        if self.is_media_request(request):
            return await self.media_answer(request, raw)
        status, body, parsed = self._answer(request, raw)
        with self.changed:
            self.calls.append(Call(request.method, request.path, parsed, status))
            lose = status == 200 and request.path.endswith("/messages") and self._lost_answers > 0
            self._lost_answers -= lose
            self.changed.notify_all()
        if lose:
            request.transport.close()  # type: ignore[union-attr]
        return web.json_response(body, status=status)

    def _answer(self, request: web.Request, raw: bytes) -> tuple[int, dict[str, Any], Any]:
        expected_path = f"/{self.version}/{self.phone_number_id}/messages"
        if request.method == "GET" and request.path == f"/{self.version}/{self.phone_number_id}":
            return (*self._phone_number(request), None)
        if request.method != "POST" or not request.path.endswith("/messages"):
            return (
                *self._violation(
                    f"{request.method} {request.path}: not an endpoint Threadline may use",
                    400,
                    100,
                    "Unsupported request",
                ),
                None,
            )
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return (
                *self._violation(
                    "missing or wrong access token",
                    401,
                    190,
                    "Invalid OAuth access token - Cannot parse access token",
                    kind="OAuthException",
                ),
                None,
            )
        if request.path != expected_path:
            return (
                *self._violation(
                    f"POST {request.path}: unknown phone number id or version",
                    400,
                    100,
                    f"Unsupported post request. Object with ID '{request.path.split('/')[2]}' does not exist",
                ),
                None,
            )
        if not request.content_type.startswith("application/json"):
            return (
                *self._violation(
                    f"content type {request.content_type}, expected application/json",
                    400,
                    100,
                    "Invalid parameter",
                ),
                None,
            )
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return (*self._violation("body is not a JSON object", 400, 100, "Invalid parameter"), body)
        problem = self.check_send(body)
        if problem:
            return (*self._violation(problem, 400, 100, f"(#100) Invalid parameter: {problem}"), body)
        with self.changed:
            if self._failures:
                code, http_status, message, details = self._failures.pop(0)
                return http_status, _error(code, message, details), body
            message_id = f"wamid.STANDIN{next(self._ids):06d}"
            self.sent.append(SentMessage(str(body["to"]), str(body["type"]), body, message_id, time.time()))
        return (
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": str(body["to"]).lstrip("+")}],
                "messages": [{"id": message_id}],
            },
            body,
        )

    def _phone_number(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        """GET /{Version}/{Phone-Number-ID}: what `threadline check` asks to prove the token works."""
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            # A wrong token is what check exists to find: Graph's answer, not a violation.
            return 401, _error(190, "Invalid OAuth access token - Cannot parse access token", "")
        allowed = {"fields"}
        unknown = set(request.query) - allowed
        if unknown:
            return self._violation(
                f"GET phone number: unknown parameters {sorted(unknown)}", 400, 100, "Invalid parameter"
            )
        return 200, {
            "id": self.phone_number_id,
            "display_phone_number": "+1 555-078-3881",
            "verified_name": "Threadline Test",
            "quality_rating": "GREEN",
        }

    def check_send(self, body: dict[str, Any]) -> str | None:
        """The first way `body` breaks the spec's send schema, or None."""
        mapping = self.spec["components"]["schemas"]["Message"]["discriminator"]["mapping"]
        ref = mapping.get(body.get("type"))
        if ref is None:
            return f"type {body.get('type')!r} is not one of {sorted(mapping)}"
        schema = _flatten(self.spec, ref)
        errors = sorted(
            jsonschema.Draft202012Validator(schema, registry=self._registry).iter_errors(body),
            key=lambda e: list(e.path),
        )
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "body"
            return f"{where}: {errors[0].message}"
        if body["type"] == "text" and not (body.get("text") or {}).get("body"):
            return "text/body is required"  # Graph answers "Param text['body'] is required"
        media_problem = self.check_media_send(body)
        if media_problem:
            return media_problem
        return None

    def _violation(
        self, what: str, http_status: int, code: int, message: str, *, kind: str = "OAuthException"
    ) -> tuple[int, dict[str, Any]]:
        with self.changed:
            self.violations.append(what)
        return http_status, _error(code, message, "", kind=kind)


def _error(code: int, message: str, details: str, *, kind: str = "OAuthException") -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": "AStandInTrace"}
    if details or code >= 130000:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details or message}
    return {"error": error}


def _flatten(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    """One object schema from an `allOf` of object schemas; nested `$ref`s stay for the registry."""
    schema = copy.deepcopy(_resolve(spec, ref))
    if "allOf" not in schema:
        return _with_registry_refs(schema)
    merged: dict[str, Any] = {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }
    for part in schema["allOf"]:
        part = _resolve(spec, part["$ref"]) if "$ref" in part else part
        merged["properties"].update(part.get("properties", {}))
        merged["required"] += part.get("required", [])
    return _with_registry_refs(merged)


def _resolve(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _with_registry_refs(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: ("spec" + v if k == "$ref" and v.startswith("#") else _with_registry_refs(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_with_registry_refs(v) for v in schema]
    return schema
