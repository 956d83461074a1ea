"""A strict stand-in for an OpenAI-compatible server: `POST /v1/chat/completions`, `POST /v1/embeddings`
and `GET /v1/models` (what `threadline check` asks).

No published spec is in /work/shared/specs for OpenAI, so the checks follow OpenAI's API reference
for what Threadline sends: a bearer key; a known model; `messages` a list of {role, content} with a
known role and string content; `response_format` of type `json_schema` with a valid name, `strict`
true and a schema that strict mode accepts (an object, every property required,
`additionalProperties: false`); no unknown top-level field (OpenAI answers 400 "Unrecognized
request argument"). A request that fails a check gets OpenAI's error shape with 400/401/404 and is
recorded as refused, so a test sees it.

Each test scripts the answers (`script`): a decision dict (answered as the message content), or
one of the `Scripted` shapes below; when the script is empty, `default` answers. Every request is
recorded (`requests`), so tests can assert what the model was (and was never) shown.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.standins.server import StandInServer

CHAT_FIELDS = {
    "model",
    "messages",
    "response_format",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "seed",
    "n",
    "stop",
    "user",
    "stream",
}
EMBEDDING_FIELDS = {"model", "input", "encoding_format", "dimensions", "user"}
ROLES = {"system", "developer", "user", "assistant"}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Scripted:
    """One scripted answer other than a plain decision.

    kind: "status" (HTTP `status` with an error body), "hang" (answer after `seconds`), "refusal",
    "length" (finish_reason length, `content` cut), "raw" (`content` as the message content, verbatim).
    """

    kind: str
    status: int = 500
    seconds: float = 0.0
    content: str = ""


@dataclass
class Request:
    path: str
    body: dict[str, Any]
    refused: str | None = None  # why the stand-in refused it, if it did

    def text(self) -> str:
        """Everything the model was shown, as one string."""
        return json.dumps(self.body, ensure_ascii=False)


@dataclass
class OpenAIStandIn(StandInServer):
    api_key: str = "sk-test"
    model: str = "gpt-test"
    embedding_model: str | None = None
    default: dict[str, Any] | Scripted = field(
        default_factory=lambda: decision("Hello! How can I help?", intent="greeting")
    )
    script: list[dict[str, Any] | Scripted] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()
        self.name = "openai-standin"
        self._ids = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)

    def url_for(self, port: int) -> str:
        return f"http://127.0.0.1:{port}/v1"

    def describe(self) -> str:
        return f"{len(self.requests)} requests: " + "; ".join(
            f"{r.path} {'refused: ' + r.refused if r.refused else 'ok'}" for r in self.requests[-5:]
        )

    @property
    def chats(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions") and r.refused is None]

    @property
    def refused(self) -> list[Request]:
        return [r for r in self.requests if r.refused is not None]

    # --- handlers ------------------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.Response:
        body, problem = await self._read(request, CHAT_FIELDS)
        if problem is None:
            problem = _chat_problem(body, self.model)
        if problem is not None:
            return self._refuse(request.path, body, *problem)
        with self.changed:
            answer = self.script.pop(0) if self.script else self.default
            self.requests.append(Request(request.path, body))
            self.changed.notify_all()
        if isinstance(answer, Scripted):
            if answer.kind == "status":
                return _error(answer.status, "server_error", "The server had an error")
            if answer.kind == "hang":
                await asyncio.sleep(answer.seconds)
                late = decision("Thanks for waiting!", intent="greeting")
                return web.json_response(self._completion(json.dumps(late)))
            if answer.kind == "refusal":
                return web.json_response(self._completion(None, refusal="I can't help with that."))
            if answer.kind == "length":
                return web.json_response(self._completion(answer.content, finish="length"))
            return web.json_response(self._completion(answer.content))
        return web.json_response(self._completion(json.dumps(answer)))

    async def _models(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._refuse(request.path, {}, 401, "invalid_api_key", "Incorrect API key provided")
        with self.changed:
            self.requests.append(Request(request.path, {}))
            self.changed.notify_all()
        models = [self.model, *([self.embedding_model] if self.embedding_model else [])]
        data = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "standin"} for m in models]
        return web.json_response({"object": "list", "data": data})

    async def _embeddings(self, request: web.Request) -> web.Response:
        body, problem = await self._read(request, EMBEDDING_FIELDS)
        if problem is None and (self.embedding_model is None or body.get("model") != self.embedding_model):
            problem = (404, "model_not_found", f"The model `{body.get('model')}` does not exist")
        texts = body.get("input")
        if problem is None and not (isinstance(texts, list) and all(isinstance(t, str) for t in texts)):
            problem = (400, "invalid_request_error", "input must be a list of strings")
        if problem is not None:
            return self._refuse(request.path, body, *problem)
        with self.changed:
            self.requests.append(Request(request.path, body))
            self.changed.notify_all()
        data = [{"object": "embedding", "index": n, "embedding": _embed(t)} for n, t in enumerate(texts)]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )

    async def _read(
        self, request: web.Request, fields: set[str]
    ) -> tuple[dict[str, Any], tuple[int, str, str] | None]:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return {}, (401, "invalid_api_key", "Incorrect API key provided")
        try:
            body = await request.json()
        except ValueError:
            return {}, (400, "invalid_request_error", "We could not parse the JSON body of your request")
        if not isinstance(body, dict):
            return {}, (400, "invalid_request_error", "The body must be a JSON object")
        unknown = sorted(set(body) - fields)
        if unknown:
            return body, (
                400,
                "invalid_request_error",
                f"Unrecognized request argument supplied: {unknown[0]}",
            )
        return body, None

    def _refuse(self, path: str, body: dict[str, Any], status: int, code: str, message: str) -> web.Response:
        with self.changed:
            self.requests.append(Request(path, body, refused=message))
            self.changed.notify_all()
        return _error(status, code, message)

    def _completion(
        self, content: str | None, *, finish: str = "stop", refusal: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        }


def decision(
    reply: str,
    *,
    intent: str = "question",
    confidence: float = 0.9,
    reasoning: str = "Answered from the knowledge base.",
    escalate: bool = False,
    reasons: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "reply": reply,
        "intent": intent,
        "confidence": confidence,
        "reasoning": reasoning,
        "escalate": escalate,
        "reasons": reasons or [],
    }


def _chat_problem(body: dict[str, Any], model: str) -> tuple[int, str, str] | None:
    if body.get("model") != model:
        return 404, "model_not_found", f"The model `{body.get('model')}` does not exist"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, "invalid_request_error", "messages must be a non-empty array"
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return 400, "invalid_request_error", f"messages[{n}].role is not one of {sorted(ROLES)}"
        if not isinstance(message.get("content"), str) or set(message) - {"role", "content", "name"}:
            return (
                400,
                "invalid_request_error",
                f"messages[{n}] must be {{role, content}} with string content",
            )
    fmt = body.get("response_format")
    if fmt is not None:
        return _format_problem(fmt)
    return None


def _format_problem(fmt: Any) -> tuple[int, str, str] | None:
    bad = (400, "invalid_request_error")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or set(fmt) != {"type", "json_schema"}:
        return (*bad, "response_format must be {type: json_schema, json_schema}")
    spec = fmt["json_schema"]
    if not isinstance(spec, dict) or set(spec) - {"name", "strict", "schema", "description"}:
        return (*bad, "response_format.json_schema has unknown fields")
    if not isinstance(spec.get("name"), str) or not _NAME.match(spec["name"]):
        return (*bad, "response_format.json_schema.name must match ^[a-zA-Z0-9_-]{1,64}$")
    if spec.get("strict") is not True:
        return (*bad, "Threadline asks for strict structured output")
    schema = spec.get("schema")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return (*bad, "the schema must be an object")
    properties = schema.get("properties")
    if not isinstance(properties, dict) or set(schema.get("required", [])) != set(properties):
        return (*bad, "In strict mode every property must be listed in 'required'")
    if schema.get("additionalProperties") is not False:
        return (*bad, "In strict mode 'additionalProperties' must be false")
    return None


def _error(status: int, code: str, message: str) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status=status
    )


def _embed(text: str) -> list[float]:
    """A bag-of-letters vector: texts sharing words point the same way (enough to rank by meaning here)."""
    vector = [0.0] * 26
    for char in text.lower():
        if "a" <= char <= "z":
            vector[ord(char) - 97] += 1.0
    return vector
