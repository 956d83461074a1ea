"""The model's answer: a JSON object that must match DECISION_SCHEMA exactly (OpenAI's strict
structured output). Anything else — not JSON, a missing or extra field, a wrong type or value — is
not half-used: `parse_decision` raises InvalidOutput and the agent hands off."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

INTENTS = (
    "greeting",
    "question",  # asks about the product, service or company: a factual question
    "pricing",
    "contract",
    "legal",
    "meeting",  # wants a call or a demo
    "complaint",  # unhappy, frustrated
    "human_request",  # asks for a person
    "not_interested",
    "other",
)
REPLY_LIMIT = 4000
REASONING_LIMIT = 2000

DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reply": {"type": "string", "description": "the message to send to the lead; empty to hand off"},
        "intent": {"type": "string", "enum": list(INTENTS)},
        "confidence": {"type": "number", "description": "0 to 1: how sure the reply is right and enough"},
        "reasoning": {"type": "string", "description": "one or two sentences for the sales team"},
        "escalate": {"type": "boolean", "description": "true: a person should take over"},
        "reasons": {"type": "array", "items": {"type": "string"}, "description": "why to escalate"},
    },
    "required": ["reply", "intent", "confidence", "reasoning", "escalate", "reasons"],
    "additionalProperties": False,
}


class InvalidOutput(ValueError):
    """The model's output is not a decision."""


@dataclass(frozen=True)
class Decision:
    reply: str
    intent: str
    confidence: float
    reasoning: str
    escalate: bool
    reasons: list[str]


def parse_decision(content: str | None) -> Decision:
    if not content or not content.strip():
        raise InvalidOutput("the model answered nothing")
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):  # RecursionError: arrays nested deeper than the reader goes
        raise InvalidOutput("the model's answer is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidOutput("the model's answer is not a JSON object")
    expected = set(DECISION_SCHEMA["required"])
    if set(data) != expected:
        missing, extra = sorted(expected - set(data)), sorted(set(data) - expected)
        raise InvalidOutput(f"the model's answer has the wrong fields (missing {missing}, extra {extra})")
    reply, intent, confidence = data["reply"], data["intent"], data["confidence"]
    reasoning, escalate, reasons = data["reasoning"], data["escalate"], data["reasons"]
    if not isinstance(reply, str) or len(reply) > REPLY_LIMIT:
        raise InvalidOutput("the model's reply is not a string of reasonable length")
    if intent not in INTENTS:
        raise InvalidOutput(f"the model's intent {str(intent)[:40]!r} is not one of the known intents")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        raise InvalidOutput("the model's confidence is not a number from 0 to 1")
    if not isinstance(reasoning, str) or not isinstance(escalate, bool):
        raise InvalidOutput("the model's reasoning or escalate field has the wrong type")
    if not isinstance(reasons, list) or not all(isinstance(reason, str) for reason in reasons):
        raise InvalidOutput("the model's reasons are not a list of strings")
    return Decision(
        reply=reply.strip(),
        intent=intent,
        confidence=float(confidence),
        reasoning=reasoning.strip()[:REASONING_LIMIT],
        escalate=escalate,
        reasons=[reason.strip()[:300] for reason in reasons[:10] if reason.strip()],
    )
