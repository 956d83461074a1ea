"""The model call: the `openai` client against any OpenAI-compatible server, asking for a decision in
strict JSON-schema form. Bounded: one call's timeout and the client's retries (connection errors,
429, 5xx) come from settings. Whatever goes wrong — an HTTP error, a timeout, a refusal, an answer
cut off at the length limit, output that is not the schema — is a `ModelFailure` with the reason in
words, and the agent hands off: never a half answer."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

from ai.decision import DECISION_SCHEMA, Decision, InvalidOutput, parse_decision
from ai.knowledge import Entry
from core.metrics import async_provider_call

MAX_COMPLETION_TOKENS = 800
EMBEDDING_MIN_SIMILARITY = 0.35


class ModelFailure(Exception):
    """The model gave no usable decision; `reason` says why, in words for the thread."""

    def __init__(self, reason: str, *, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


@dataclass(frozen=True)
class Answer:
    decision: Decision
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class ModelClient:
    api_key: str = field(repr=False)  # a secret: never in a repr, a log line or a test report
    base_url: str | None
    model: str
    timeout: float
    retries: int
    embedding_model: str | None = None

    def _client(self) -> AsyncOpenAI:
        return AsyncOpenAI(
            api_key=self.api_key, base_url=self.base_url, timeout=self.timeout, max_retries=self.retries
        )

    async def decide(self, messages: list[dict[str, str]]) -> Answer:
        response_format: ResponseFormatJSONSchema = {
            "type": "json_schema",
            "json_schema": {"name": "decision", "strict": True, "schema": DECISION_SCHEMA},
        }
        async with self._client() as client:
            try:
                async with async_provider_call("openai"):  # for /metrics: with the client's own retries
                    response = await client.chat.completions.create(
                        model=self.model,
                        messages=cast(list[ChatCompletionMessageParam], messages),
                        response_format=response_format,
                        temperature=0.2,
                        max_tokens=MAX_COMPLETION_TOKENS,
                    )
            except openai.APITimeoutError:
                raise ModelFailure(f"the model did not answer within {self.timeout:g} seconds") from None
            except openai.APIStatusError as exc:
                raise ModelFailure(f"the model server answered HTTP {exc.status_code}") from None
            except openai.APIConnectionError:
                raise ModelFailure("the model server could not be reached") from None
            except openai.OpenAIError as exc:
                raise ModelFailure(f"the model call failed ({type(exc).__name__})") from None
            except (ValueError, RecursionError):  # a 2xx body that is not JSON, or nested past reading
                raise ModelFailure("the model server's answer is not JSON") from None
        try:
            return _answer(response)
        except (AttributeError, TypeError, IndexError, KeyError):
            # The client does not validate the answer: a server may send any shape under a 200.
            raise ModelFailure("the model server's answer is not a chat completion") from None

    async def rerank(self, query: str, entries: Sequence[Entry], top: int) -> list[Entry] | None:
        """The entries closest in meaning to the query, by the server's /embeddings; None when there is
        no embedding model or the call fails (the caller keeps the lexical ranking)."""
        if self.embedding_model is None or not entries:
            return None
        texts = [query, *(f"{entry.title}\n{entry.body}" for entry in entries)]
        try:
            async with self._client() as client:
                response = await client.embeddings.create(model=self.embedding_model, input=texts)
        except openai.OpenAIError:
            return None
        vectors = [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        if len(vectors) != len(texts):
            return None
        question, documents = vectors[0], vectors[1:]
        scored = sorted(
            ((_cosine(question, vector), n) for n, vector in enumerate(documents)),
            key=lambda p: (-p[0], p[1]),
        )
        return [entries[n] for similarity, n in scored[:top] if similarity >= EMBEDDING_MIN_SIMILARITY]


def _answer(response: ChatCompletion) -> Answer:
    usage = response.usage
    prompt, completion = (_count(usage.prompt_tokens), _count(usage.completion_tokens)) if usage else (0, 0)
    if not response.choices:
        raise ModelFailure("the model answered no choice", prompt_tokens=prompt, completion_tokens=completion)
    choice = response.choices[0]
    failure = None
    if choice.finish_reason == "length":
        failure = "the model's answer was cut off (length limit)"
    elif choice.finish_reason == "content_filter":
        failure = "the model's answer was withheld by its content filter"
    elif choice.message.refusal:
        failure = "the model refused to answer"
    if failure is not None:
        raise ModelFailure(failure, prompt_tokens=prompt, completion_tokens=completion)
    content = choice.message.content
    try:
        decision = parse_decision(content if isinstance(content, str) else None)
    except InvalidOutput as exc:
        raise ModelFailure(str(exc), prompt_tokens=prompt, completion_tokens=completion) from None
    return Answer(decision, prompt, completion)


def _count(tokens: object) -> int:
    """A token count as the server gave it, 0 when it is not one (it is stored as an integer)."""
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and 0 <= tokens < 2**31 else 0


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def elapsed_ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)
