"""A strict stand-in for Unipile's API v1 (LinkedIn), and the webhooks Unipile sends.

There is no published machine-readable spec of Unipile's v1 in `specs/`, so the checks follow its API
reference (developer.unipile.com): every call carries the `X-API-KEY`; only the endpoints Threadline
may use exist — send into a chat (`POST /api/v1/chats/{chat_id}/messages`, multipart/form-data with
`text` and `attachments` files, no unknown fields), retrieve an attachment
(`GET /api/v1/messages/{message_id}/attachments/{attachment_id}`) and retrieve our account
(`GET /api/v1/accounts/{account_id}`). Anything else is a violation the test fails on, answered the
way Unipile answers (RFC 7807 problems: type, status, title, detail).

Like the real thing, it can echo a message we sent back through the messaging webhook — and, with
`echo_before_answer`, do so before it answers the send, as Unipile may.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.standins.server import StandInServer

API = "/api/v1"
# Send a message in a chat: the form fields Unipile's reference lists.
SEND_FIELDS = {
    "text",
    "attachments",
    "thread_id",
    "quote_id",
    "voice_message",
    "video_message",
    "typing_duration",
}
FILE_FIELDS = {"attachments", "voice_message", "video_message"}


@dataclass(frozen=True)
class SentFile:
    name: str
    mime_type: str
    content: bytes


@dataclass(frozen=True)
class Sent:
    chat_id: str
    text: str | None
    files: list[SentFile]
    message_id: str
    at: float


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    status: int


@dataclass
class Echo:
    """Where Unipile's messaging webhook goes, and the secret header it carries."""

    url: str
    secret: str
    before_answer: bool = False
    answers: list[int] = field(default_factory=list)


class UnipileStandIn(StandInServer):
    name = "unipile-standin"

    def __init__(self, *, api_key: str, account_id: str, own_provider_id: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.account_id = account_id
        self.own_provider_id = own_provider_id
        self.account_status = "OK"
        self.chats: set[str] = set()
        self.attachments: dict[tuple[str, str], tuple[str, bytes]] = {}
        self.sent: list[Sent] = []
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.echo: Echo | None = None
        self._failures: list[tuple[int, str, str]] = []
        self._lost_answers = 0
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    def url_for(self, port: int) -> str:
        return f"http://127.0.0.1:{port}{API}"

    def describe(self) -> str:
        return f"sent={self.sent} calls={self.calls[-5:]} violations={self.violations}"

    # --- test controls -------------------------------------------------------------------------------

    def add_chat(self, chat_id: str) -> None:
        with self.changed:
            self.chats.add(chat_id)

    def add_attachment(self, message_id: str, attachment_id: str, mime_type: str, content: bytes) -> None:
        with self.changed:
            self.attachments[(message_id, attachment_id)] = (mime_type, content)

    def fail_next(self, status: int, kind: str, title: str = "Error", detail: str = "") -> None:
        """The next send gets Unipile's problem answer (not a violation: providers do fail)."""
        with self.changed:
            self._failures.append((status, kind, title + (f" — {detail}" if detail else "")))

    def lose_answer_next(self, count: int = 1) -> None:
        """The next `count` sends are taken (in `sent`, and echoed), but the connection closes before
        the answer: the sender cannot know whether the message went, as after a read timeout."""
        with self.changed:
            self._lost_answers += count

    def echo_sends_to(self, url: str, secret: str, *, before_answer: bool = False) -> None:
        """Echo every message we send back through the messaging webhook, as Unipile does."""
        with self.changed:
            self.echo = Echo(url, secret, before_answer)

    # --- the API -------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        response = await self._answer(request)
        with self.changed:
            self.calls.append(Call(request.method, request.path, response.status))
            self.changed.notify_all()
        return response

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("X-API-KEY") != self.api_key:
            return self._violation(
                "missing or wrong X-API-KEY", 401, "errors/missing_credentials", "Unauthorized"
            )
        parts = request.path.removeprefix(API).strip("/").split("/")
        if request.method == "POST" and len(parts) == 3 and parts[0] == "chats" and parts[2] == "messages":
            return await self._send(request, parts[1])
        if request.method == "GET" and len(parts) == 2 and parts[0] == "accounts":
            return self._account(parts[1])
        if (
            request.method == "GET"
            and len(parts) == 4
            and parts[0] == "messages"
            and parts[2] == "attachments"
        ):
            return self._attachment(parts[1], parts[3])
        return self._violation(
            f"{request.method} {request.path}: not an endpoint Threadline may use",
            404,
            "errors/resource_not_found",
            "Not found",
        )

    async def _send(self, request: web.Request, chat_id: str) -> web.StreamResponse:
        if not request.content_type.startswith("multipart/form-data"):
            return self._violation(
                f"send: content type {request.content_type}, expected multipart/form-data",
                400,
                "errors/invalid_parameters",
                "Invalid parameters",
            )
        text: str | None = None
        files: list[SentFile] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, aiohttp.BodyPartReader)
            name = part.name or ""
            if name not in SEND_FIELDS:
                return self._violation(
                    f"send: unknown field {name!r}", 400, "errors/invalid_parameters", "Invalid parameters"
                )
            if name in FILE_FIELDS:
                if not part.filename:
                    return self._violation(
                        f"send: {name} must be a file", 400, "errors/invalid_parameters", "Invalid parameters"
                    )
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                files.append(SentFile(part.filename, content_type, bytes(await part.read())))
            elif name == "text":
                text = await part.text()
        if not (text or files):
            return self._violation(
                "send: neither text nor attachments", 400, "errors/invalid_parameters", "Invalid parameters"
            )
        if chat_id not in self.chats:
            return _problem(404, "errors/resource_not_found", "Resource not found", f"chat {chat_id}")
        with self.changed:
            if self._failures:
                status, kind, title = self._failures.pop(0)
                return _problem(status, kind, title)
            if self.account_status == "CREDENTIALS":
                return _problem(401, "errors/disconnected_account", "Disconnected account")
            message_id = f"unipile-msg-{next(self._ids):04d}"
            sent = Sent(chat_id, text, files, message_id, time.time())
            self.sent.append(sent)
            lose = self._lost_answers > 0
            self._lost_answers -= lose
        if self.echo is not None and self.echo.before_answer:
            await self._echo(sent)
        answer = web.json_response({"object": "MessageSent", "message_id": message_id}, status=201)
        if lose:
            request.transport.close()  # type: ignore[union-attr]
        if self.echo is not None and not self.echo.before_answer:  # the usual order: answer, then echo
            task = asyncio.get_running_loop().create_task(self._echo(sent))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return answer

    async def _echo(self, sent: Sent) -> None:
        assert self.echo is not None
        payload = message_webhook(
            account_id=self.account_id,
            chat_id=sent.chat_id,
            message_id=sent.message_id,
            text=sent.text or "",
            sender=attendee(self.own_provider_id, "Ana Lima (Threadline)"),
            attendees=[],
            is_sender=True,
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.echo.url, json=payload, headers={"X-Unipile-Secret": self.echo.secret}
            ) as answer,
        ):
            with self.changed:
                self.echo.answers.append(answer.status)
                self.changed.notify_all()

    def _account(self, account_id: str) -> web.Response:
        if account_id != self.account_id:
            return _problem(404, "errors/resource_not_found", "Resource not found", f"account {account_id}")
        return web.json_response(
            {
                "object": "Account",
                "type": "LINKEDIN",
                "id": self.account_id,
                "name": "Ana Lima",
                "created_at": "2026-01-05T09:00:00.000Z",
                "connection_params": {"im": {"id": self.own_provider_id, "username": "Ana Lima"}},
                "sources": [{"id": f"{self.account_id}_MESSAGING", "status": self.account_status}],
                "groups": [],
            }
        )

    def _attachment(self, message_id: str, attachment_id: str) -> web.Response:
        found = self.attachments.get((message_id, attachment_id))
        if found is None:
            return _problem(404, "errors/resource_not_found", "Resource not found", "attachment")
        mime_type, content = found
        return web.Response(body=content, content_type=mime_type)

    def _violation(self, what: str, status: int, kind: str, title: str) -> web.Response:
        with self.changed:
            self.violations.append(what)
        return _problem(status, kind, title, what)


def _problem(status: int, kind: str, title: str, detail: str = "") -> web.Response:
    body: dict[str, Any] = {"title": title, "type": kind, "status": status}
    if detail:
        body["detail"] = detail
    return web.json_response(body, status=status)


# --- the webhooks Unipile sends ------------------------------------------------------------------------


def attendee(provider_id: str, name: str) -> dict[str, str]:
    return {
        "attendee_id": f"att-{provider_id[-6:]}",
        "attendee_name": name,
        "attendee_provider_id": provider_id,
        "attendee_profile_url": f"https://www.linkedin.com/in/{provider_id}/",
    }


def message_webhook(
    *,
    account_id: str,
    chat_id: str,
    message_id: str,
    text: str,
    sender: dict[str, str],
    attendees: list[dict[str, str]],
    attachments: list[dict[str, Any]] | None = None,
    is_sender: bool | None = None,
    timestamp: str = "2026-12-03T09:15:07.965Z",
) -> dict[str, Any]:
    """A `message_received` event as Unipile's "New messages" webhook sends it."""
    payload: dict[str, Any] = {
        "account_id": account_id,
        "account_type": "LINKEDIN",
        "event": "message_received",
        "chat_id": chat_id,
        "timestamp": timestamp,
        "webhook_name": "Threadline",
        "message_id": message_id,
        "message": text,
        "sender": sender,
        "attendees": attendees,
        "attachments": attachments or [],
    }
    if is_sender is not None:
        payload["is_sender"] = is_sender
    return payload


def account_status(account_id: str, message: str) -> dict[str, Any]:
    """Unipile's account status webhook."""
    return {"AccountStatus": {"account_id": account_id, "account_type": "LINKEDIN", "message": message}}


def raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
