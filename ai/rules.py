"""When the agent hands a conversation to the team: the escalation rules, one TOML file
(THREADLINE_AI_RULES), else the built-in defaults below (`threadline check` prints them).

Rules read the lead's message before the model is asked (a person was asked for, frustration, a
high-value lead, a pricing/contract/legal topic, too many AI turns, business hours): any of them hands
off at once, without spending a model call on an answer nobody will send. The rest read the model's
decision (its own escalate flag and intent, low confidence, no knowledge for a factual question, and a
reply that talks money or states a figure the knowledge used does not contain).

A keyword matches at the start of a word, case-insensitively: `refund` matches "Refunds".
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ai.decision import INTENTS, Decision
from ai.knowledge import Entry
from core.errors import SettingsError
from core.queries.ai_turn import TurnContext

DEFAULT_RULES = """\
# Threadline's escalation rules (THREADLINE_AI_RULES names a file like this one).
# Any rule that fires hands the conversation to the team: the AI pauses and the thread says why.

[human_request]  # the lead asks for a person (or the model's intent is human_request)
keywords = [
    "human", "real person", "representative", "salesperson", "sales rep", "agent", "call me",
    "speak to a", "speak with a", "talk to a", "talk with a",
]

[sentiment]  # frustration or anger (or the model's intent is complaint)
keywords = [
    "angry", "annoyed", "frustrat", "disappointed", "unacceptable", "ridiculous", "terrible",
    "awful", "worst", "scam", "complain", "useless", "wtf",
]

[high_value]  # a lead this valuable gets a person: lead score at least min_score, or one of these campaigns
min_score = 80
campaigns = []

[topics]  # pricing, contract and legal go to a person (keywords: the lead's message or the reply)
keywords = [
    "price", "pricing", "cost", "quote", "discount", "invoice", "refund", "contract", "terms",
    "agreement", "legal", "lawyer", "liability", "gdpr", "nda",
]
intents = ["pricing", "contract", "legal"]

[confidence]  # the model's own confidence below this hands off
min = 0.6

[knowledge]  # a factual question with no knowledge entry to answer from hands off
required_for_intents = ["question", "pricing"]

[turns]  # the AI answers at most this many times in a row before a person looks in
max_in_row = 5

[off_hours]  # enabled: the AI answers only outside business hours (the team answers during them)
enabled = false
timezone = "UTC"
start = "09:00"
end = "18:00"
days = ["mon", "tue", "wed", "thu", "fri"]
"""

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FIGURE = re.compile(r"\d[\d.,]*\s?%|[$€£]\s?\d[\d.,]*|\d[\d.,]*\s?(?:usd|eur|gbp|dollars?|euros?|pounds?)\b")
# A web address in a reply (a lead may talk the model into sending a phishing link): with a scheme or www.
_LINK = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>()\[\]{}|\"'`]+", re.IGNORECASE)


@dataclass(frozen=True)
class OffHours:
    enabled: bool
    timezone: ZoneInfo
    start: time
    end: time
    days: frozenset[int]  # 0 = Monday

    def business_hours(self, now: datetime) -> bool:
        local = now.astimezone(self.timezone)
        return local.weekday() in self.days and self.start <= local.time() < self.end


@dataclass(frozen=True)
class Rules:
    human_keywords: tuple[str, ...]
    negative_keywords: tuple[str, ...]
    high_value_score: int | None
    high_value_campaigns: frozenset[str]
    topic_keywords: tuple[str, ...]
    topic_intents: frozenset[str]
    min_confidence: float
    knowledge_intents: frozenset[str]
    max_in_row: int
    off_hours: OffHours

    def before_model(self, context: TurnContext, lead_text: str, now: datetime) -> list[str]:
        """Reasons to hand off read from the lead's message and state alone."""
        reasons = []
        if self.off_hours.enabled and self.off_hours.business_hours(now):
            reasons.append(
                "business hours: the team answers now (the AI answers only outside business hours)"
            )
        if found := _first(self.human_keywords, lead_text):
            reasons.append(f'the lead asked for a person ("{found}")')
        if found := _first(self.negative_keywords, lead_text):
            reasons.append(f'the lead sounds frustrated ("{found}")')
        score, campaign = context.lead.score, context.lead.campaign
        if self.high_value_score is not None and score is not None and score >= self.high_value_score:
            reasons.append(f"high-value lead (score {score}, at least {self.high_value_score})")
        elif campaign is not None and campaign.casefold() in self.high_value_campaigns:
            reasons.append(f"high-value lead (campaign {campaign})")
        if found := _first(self.topic_keywords, lead_text):
            reasons.append(f'a pricing, contract or legal topic ("{found}")')
        if context.ai_turns_in_row >= self.max_in_row:
            reasons.append(f"the AI has answered {context.ai_turns_in_row} times in a row")
        return reasons

    def after_model(self, decision: Decision, used: Sequence[Entry]) -> list[str]:
        """Reasons to hand off read from the model's decision and the knowledge it was given."""
        reasons = []
        if decision.escalate:
            said = "; ".join(decision.reasons) or "no reason given"
            reasons.append(f"the model asked for a person: {said}")
        if decision.intent == "human_request":
            reasons.append("the lead asked for a person")
        if decision.intent == "complaint":
            reasons.append("the lead sounds frustrated")
        if decision.intent in self.topic_intents:
            reasons.append(f"a pricing, contract or legal topic (intent {decision.intent})")
        if decision.confidence < self.min_confidence:
            reasons.append(f"low confidence ({decision.confidence:.2f}, below {self.min_confidence:.2f})")
        if decision.intent in self.knowledge_intents and not used:
            reasons.append("no knowledge entry answers this question")
        if not decision.reply:
            reasons.append("the model wrote no reply")
        if found := _first(self.topic_keywords, decision.reply):
            reasons.append(f'the reply touches a pricing, contract or legal topic ("{found}")')
        known = " ".join(entry.body for entry in used).lower()
        invented = [f for f in _FIGURE.findall(decision.reply.lower()) if f.strip() not in known]
        if invented:
            reasons.append(f"the reply states a figure not in the knowledge used ({invented[0].strip()})")
        links = [link.rstrip(".,;:!?*_~") for link in _LINK.findall(decision.reply)]
        if foreign := [link for link in links if link.lower() not in known]:
            reasons.append(f"the reply links to an address not in the knowledge used ({foreign[0][:80]})")
        return list(dict.fromkeys(reasons))


def load_rules(path: Path | None) -> Rules:
    """The rules file, else the defaults; a file that cannot be read or has unknown keys stops the
    start with one line saying what to fix."""
    text = DEFAULT_RULES
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"THREADLINE_AI_RULES: cannot read {path}: {exc.strerror}") from None
    try:
        return parse_rules(text)
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as exc:
        raise SettingsError(f"THREADLINE_AI_RULES ({path or 'built-in defaults'}): {exc}") from None


def parse_rules(text: str) -> Rules:
    """A section or key left out keeps its default; an unknown one is an error (a typo would
    otherwise silently turn a rule off)."""
    defaults, given = tomllib.loads(DEFAULT_RULES), tomllib.loads(text)
    merged: dict[str, dict[str, Any]] = {}
    for section, values in given.items():
        if section not in defaults or not isinstance(values, dict):
            raise ValueError(f"unknown section [{section}] (known: {', '.join(defaults)})")
        unknown = set(values) - set(defaults[section])
        if unknown:
            raise ValueError(f"unknown key {sorted(unknown)[0]} in [{section}]")
    for section, values in defaults.items():
        merged[section] = {**values, **given.get(section, {})}
    off = merged["off_hours"]
    intents = set(merged["topics"]["intents"]) | set(merged["knowledge"]["required_for_intents"])
    if not intents <= set(INTENTS):
        raise ValueError(f"unknown intent {sorted(intents - set(INTENTS))[0]} (known: {', '.join(INTENTS)})")
    return Rules(
        human_keywords=_keywords(merged["human_request"]["keywords"]),
        negative_keywords=_keywords(merged["sentiment"]["keywords"]),
        high_value_score=_optional_int(merged["high_value"]["min_score"]),
        high_value_campaigns=frozenset(str(c).casefold() for c in merged["high_value"]["campaigns"]),
        topic_keywords=_keywords(merged["topics"]["keywords"]),
        topic_intents=frozenset(merged["topics"]["intents"]),
        min_confidence=float(merged["confidence"]["min"]),
        knowledge_intents=frozenset(merged["knowledge"]["required_for_intents"]),
        max_in_row=int(merged["turns"]["max_in_row"]),
        off_hours=OffHours(
            enabled=bool(off["enabled"]),
            timezone=_zone(str(off["timezone"])),
            start=time.fromisoformat(str(off["start"])),
            end=time.fromisoformat(str(off["end"])),
            days=frozenset(_day(day) for day in off["days"]),
        ),
    )


def _keywords(values: list[Any]) -> tuple[str, ...]:
    return tuple(str(value).casefold() for value in values if str(value).strip())


def _optional_int(value: Any) -> int | None:
    return None if value is False or value == "" else int(value)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r} (use a name like Europe/Berlin)") from None


def _day(name: Any) -> int:
    day = str(name).strip().lower()[:3]
    if day not in _DAYS:
        raise ValueError(f"unknown day {name!r} (use mon, tue, wed, thu, fri, sat, sun)")
    return _DAYS.index(day)


def _first(keywords: Sequence[str], text: str) -> str | None:
    """The first keyword found at the start of a word of `text`."""
    folded = text.casefold()
    for keyword in keywords:
        if re.search(r"(?<!\w)" + re.escape(keyword), folded):
            return keyword
    return None
