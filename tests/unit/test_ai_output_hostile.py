"""Whatever the model server answers, the agent gets a Decision or a hand-off with a reason, never an
exception: `parse_decision` raises only InvalidOutput, `ModelClient.decide` only ModelFailure.

Property-based (hypothesis). `decide` goes through the real `openai` client; only its HTTP transport
is replaced (httpx.MockTransport), so the body a hostile or broken server sends is parsed as it would
be. THREADLINE_FUZZ_EXAMPLES sets the cases per property (see README, Development).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ai.model
from ai.decision import DECISION_SCHEMA, INTENTS, REPLY_LIMIT, Decision, InvalidOutput, parse_decision
from ai.model import Answer, ModelClient, ModelFailure

EXAMPLES = int(os.environ.get("THREADLINE_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FIELDS = DECISION_SCHEMA["required"]

ODD = st.sampled_from(
    ["", " ", "\x00", "\ud800", "é" * 3, "<!channel>", "x" * (REPLY_LIMIT + 1), "NaN", "1e999", "[]", "{}"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and ±Infinity too: json.dumps writes them, json.loads reads them back
    | st.text(max_size=30)
    | ODD
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
GOOD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "reply": st.text(max_size=200),
    "intent": st.sampled_from(INTENTS),
    "confidence": st.floats(min_value=0, max_value=1) | st.sampled_from([0, 1]),
    "reasoning": st.text(max_size=100),
    "escalate": st.booleans(),
    "reasons": st.lists(st.text(max_size=20), max_size=12),
}


@st.composite
def decision_like(draw: st.DrawFn) -> dict[str, Any]:
    """A decision whose fields are each right, of the wrong type, missing, or joined by extra ones."""
    data: dict[str, Any] = {}
    for name in FIELDS:
        choice = draw(st.sampled_from(["good", "good", "hostile", "missing"]))
        if choice == "good":
            data[name] = draw(GOOD_VALUES[name])
        elif choice == "hostile":
            data[name] = draw(JSON)
    data.update(draw(st.dictionaries(st.text(max_size=10), JSON, max_size=2)))
    return data


CONTENT = (
    decision_like().map(json.dumps)
    | JSON.map(json.dumps)
    | st.text(max_size=300)
    | st.binary(max_size=100).map(lambda raw: raw.decode("latin-1"))
    | st.sampled_from(
        [
            "```json\n{}\n```",
            '{"reply": "hi"',  # cut off
            "[" * 5000 + "]" * 5000,  # nested beyond what a recursive reader should follow
            '{"reply": "' + "a" * 200_000 + '"}',
            json.dumps({name: "x" for name in FIELDS}) * 2,
        ]
    )
)


def well_formed(decision: Decision) -> bool:
    return (
        isinstance(decision.reply, str)
        and len(decision.reply) <= REPLY_LIMIT
        and decision.intent in INTENTS
        and 0 <= decision.confidence <= 1
        and isinstance(decision.escalate, bool)
        and len(decision.reasons) <= 10
        and all(isinstance(reason, str) and reason for reason in decision.reasons)
    )


@FUZZ
@given(content=st.none() | CONTENT)
def test_parse_decision_yields_a_decision_or_says_why_not(content: str | None):
    try:
        decision = parse_decision(content)
    except InvalidOutput as refused:
        assert str(refused)  # the reason the hand-off shows in the thread
    else:
        assert well_formed(decision)


@FUZZ
@given(data=st.fixed_dictionaries(GOOD_VALUES))
def test_a_right_decision_is_never_refused(data: dict[str, Any]):
    decision = parse_decision(json.dumps(data))
    assert well_formed(decision) and decision.intent == data["intent"]


# --- the whole answer of the model server, through the openai client --------------------------------


def completion(content: Any, **overrides: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, "refusal": None}
    choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-test",
        "choices": [choice],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    return {**body, **overrides}


@st.composite
def server_answer(draw: st.DrawFn) -> tuple[int, bytes, str]:
    """(status, body, content type) a model server might answer, broken anywhere."""
    shape = draw(st.sampled_from(["content", "envelope", "choice", "raw"]))
    good = json.dumps({name: draw(GOOD_VALUES[name]) for name in FIELDS})
    if shape == "content":
        body: Any = completion(draw(st.just(good) | CONTENT | JSON))
    elif shape == "envelope":
        key = draw(st.sampled_from(["choices", "usage", "id", "object", "model", "created"]))
        body = completion(good, **{key: draw(JSON)})
    elif shape == "choice":
        body = completion(good)
        choice = body["choices"][0]
        key = draw(st.sampled_from(["message", "finish_reason", "index", "logprobs"]))
        choice[key] = draw(JSON | st.sampled_from(["length", "content_filter", "tool_calls"]))
        if draw(st.booleans()):
            choice["message"] = {**completion(good)["choices"][0]["message"], "refusal": draw(JSON)}
    else:
        raw = draw(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
        return draw(st.sampled_from([200, 200, 201, 400, 404, 422, 500, 503])), raw, "application/json"
    return 200, json.dumps(body).encode(), "application/json"


def decide(status: int, body: bytes, content_type: str, monkeypatch: pytest.MonkeyPatch) -> Answer:
    """`ModelClient.decide` against a server that answers `body`, whatever was asked."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"Content-Type": content_type})

    real = openai.AsyncOpenAI

    def with_transport(**kwargs: Any) -> openai.AsyncOpenAI:
        mocked = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        return real(**kwargs, http_client=mocked)  # type: ignore[arg-type]

    monkeypatch.setattr(ai.model, "AsyncOpenAI", with_transport)
    client = ModelClient(
        api_key="sk-test", base_url="http://model.test/v1", model="gpt-test", timeout=5, retries=0
    )
    return asyncio.run(client.decide([{"role": "user", "content": "hi"}]))


@FUZZ
@given(answer=server_answer())
def test_decide_answers_a_decision_or_a_failure_with_its_reason(
    answer: tuple[int, bytes, str], monkeypatch: pytest.MonkeyPatch
):
    try:
        made = decide(*answer, monkeypatch)
    except ModelFailure as failure:
        assert failure.reason and failure.prompt_tokens >= 0 and failure.completion_tokens >= 0
    else:
        assert well_formed(made.decision)
        assert isinstance(made.prompt_tokens, int) and isinstance(made.completion_tokens, int)


def test_a_good_answer_still_comes_through(monkeypatch: pytest.MonkeyPatch):
    good = {**{name: "" for name in FIELDS}, "intent": "greeting", "confidence": 0.8, "escalate": False}
    good |= {"reply": "Hello!", "reasons": []}
    made = decide(200, json.dumps(completion(json.dumps(good))).encode(), "application/json", monkeypatch)
    assert (made.decision.reply, made.prompt_tokens, made.completion_tokens) == ("Hello!", 10, 5)
