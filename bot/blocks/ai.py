"""The AI's side of a thread: the buttons on each AI message (Why?, 👍, 👎), the Why? modal with the
stored decision, the correction modal, and a correction posted for a teammate to approve.

Everything the model or a lead wrote (reasoning, reasons, knowledge titles, the lead's question) and
everything a teammate typed (a correction) is escaped: a model talked into writing `<!channel>` pings
nobody.
"""

from __future__ import annotations

from typing import Any

from bot.blocks import ids
from bot.mrkdwn import escape_clipped
from core.models import AIDecision, KnowledgeEntry, KnowledgeStatus

Block = dict[str, Any]
View = dict[str, Any]

TEXT_LIMIT = 2900  # of one section's text (Slack: 3,000), room left for a label
FIELD_LIMIT = 1900  # of one section field (Slack: 2,000)
LINE_LIMIT = 130  # one reason, one knowledge title: 20 of them fit in a section
MAX_LINES = 20  # reasons or knowledge entries listed; the rest counted
QUOTE_LIMIT = 1000
CORRECTION_MAX_LENGTH = 3000  # core.actions.ai_feedback.CORRECTION_LIMIT

_OUTCOMES = {
    "replied": "Answered the lead",
    "handed_off": "Handed off to the team",
    "skipped": "Not sent (a teammate or a newer message came first)",
}


def build_ai_buttons(message_id: int) -> Block:
    """The row under each AI message: Why? (the stored decision), 👍 and 👎."""

    def button(label: str, action_id: str) -> Block:
        return {
            "type": "button",
            "text": {"type": "plain_text", "text": label, "emoji": True},
            "action_id": action_id,
            "value": str(message_id),
        }

    return {
        "type": "actions",
        "block_id": ids.AI_FEEDBACK_BLOCK,
        "elements": [
            button("Why?", ids.AI_WHY),
            button(":+1: Good answer", ids.AI_UP),
            button(":-1: Wrong answer", ids.AI_DOWN),
        ],
    }


def build_handoff_blocks(notice: str, decision_id: int) -> list[Block]:
    """The AI's hand-off notice (mrkdwn, already escaped: bot.blocks.notifications.build_ai_handoff)
    with Why? under it, opening the decision that handed off."""
    return [
        _section(notice[:TEXT_LIMIT]),
        {
            "type": "actions",
            "block_id": ids.AI_HANDOFF_BLOCK,
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Why?"},
                    "action_id": ids.AI_WHY_DECISION,
                    "value": str(decision_id),
                }
            ],
        },
    ]


def build_why_modal(decision: AIDecision, *, feedback_by: str | None = None) -> View:
    """Why the AI answered as it did: intent, confidence, reasoning, escalation reasons, the knowledge
    it used, and what it cost (model, latency, tokens) — all as stored when it decided."""
    confidence = "—" if decision.confidence is None else f"{decision.confidence:.0%}"
    fields = [
        f"*Outcome*\n{_OUTCOMES.get(decision.outcome, escape_clipped(decision.outcome, 50))}",
        f"*Intent*\n{escape_clipped(decision.intent or '—', 200)}",
        f"*Confidence*\n{confidence}",
        f"*Model*\n{escape_clipped(decision.model or '—', 200)}",
        f"*Latency*\n{_seconds(decision.latency_ms)}",
        f"*Tokens*\n{decision.prompt_tokens} in, {decision.completion_tokens} out",
    ]
    blocks: list[Block] = [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": field} for field in fields]},
        _section(
            "*Reasoning*\n"
            + (escape_clipped(decision.reasoning, TEXT_LIMIT) if decision.reasoning else "_none given_")
        ),
        _section("*Escalation reasons*\n" + _lines([str(r) for r in decision.reasons or []], "_none_")),
        _section("*Knowledge used*\n" + _lines(_knowledge(decision.knowledge or []), "_none matched_")),
    ]
    if decision.feedback:
        said = ":+1: good answer" if decision.feedback == "up" else ":-1: wrong answer"
        by = f" by {escape_clipped(feedback_by, 100)}" if feedback_by else ""
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Feedback: {said}{by}"}]})
        if decision.correction:
            blocks.append(_section("*Correction*\n" + escape_clipped(decision.correction, TEXT_LIMIT)))
    return {
        "type": "modal",
        "callback_id": ids.AI_WHY_MODAL,
        "title": {"type": "plain_text", "text": "Why the AI answered"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": blocks,
    }


def build_correction_modal(decision_id: int, *, asked: str, answered: str) -> View:
    """👎: what should the answer have been? Saved as a knowledge entry a teammate approves."""
    return {
        "type": "modal",
        "callback_id": ids.AI_CORRECTION_MODAL,
        "private_metadata": str(decision_id),
        "title": {"type": "plain_text", "text": "Correct the AI"},
        "submit": {"type": "plain_text", "text": "Send for review"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section("*The lead wrote*\n" + _quote(asked)),
            _section("*The AI answered*\n" + _quote(answered)),
            {
                "type": "input",
                "block_id": ids.AI_CORRECTION_BLOCK,
                "label": {"type": "plain_text", "text": "What should the answer have been?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.AI_CORRECTION_ACTION,
                    "multiline": True,
                    "max_length": CORRECTION_MAX_LENGTH,
                },
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "A teammate approves it in the thread before the AI uses it for new answers.",
                    }
                ],
            },
        ],
    }


def parse_correction(values: dict[str, Any]) -> str:
    """The correction typed in the modal; ValueError when the submission has no such input."""
    element = (values.get(ids.AI_CORRECTION_BLOCK) or {}).get(ids.AI_CORRECTION_ACTION)
    if not isinstance(element, dict):
        raise ValueError("no correction input in the submission")
    value = element.get("value")
    if value is not None and not isinstance(value, str):
        raise ValueError("the correction is not text")
    return value or ""


def build_knowledge_review(entry: KnowledgeEntry, *, author: str | None) -> tuple[str, list[Block]]:
    """A correction posted in the thread for a teammate to approve (or reject)."""
    by = f"<@{author}>" if author else "A teammate"
    text = "Correction to review: " + escape_clipped(entry.title, 150)
    blocks: list[Block] = [
        _section(f":memo: *Correction to review* — {by} says the AI should have answered:"),
        _section(_quote(entry.body, TEXT_LIMIT - 10)),
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": escape_clipped(entry.title, LINE_LIMIT)}],
        },
        {
            "type": "actions",
            "block_id": ids.KNOWLEDGE_REVIEW_BLOCK,
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "action_id": ids.KNOWLEDGE_APPROVE,
                    "value": str(entry.id),
                },
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Reject"},
                    "action_id": ids.KNOWLEDGE_REJECT,
                    "value": str(entry.id),
                },
            ],
        },
    ]
    return text, blocks


def build_knowledge_reviewed(entry: KnowledgeEntry, *, reviewer: str | None) -> tuple[str, list[Block]]:
    """The review message once decided: what was decided, by whom; no buttons left to press."""
    by = f" by <@{reviewer}>" if reviewer else ""
    if entry.status == KnowledgeStatus.APPROVED:
        said = f":white_check_mark: *Correction approved*{by}: the AI uses it from now on."
    else:
        said = f":no_entry_sign: *Correction rejected*{by}: the AI will not use it."
    blocks: list[Block] = [
        _section(said),
        _section(_quote(entry.body, TEXT_LIMIT - 10)),
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": escape_clipped(entry.title, LINE_LIMIT)}],
        },
    ]
    return _clip(said.replace("*", ""), 200), blocks


def _knowledge(used: list[Any]) -> list[str]:
    lines = []
    for item in used:
        if isinstance(item, dict):
            title, source = str(item.get("title") or "untitled"), str(item.get("source") or "")
            lines.append(f"{title} ({source})" if source else title)
    return lines


def _lines(items: list[str], empty: str) -> str:
    if not items:
        return empty
    shown = [f"• {escape_clipped(' '.join(item.split()), LINE_LIMIT)}" for item in items[:MAX_LINES]]
    if len(items) > MAX_LINES:
        shown.append(f"_… and {len(items) - MAX_LINES} more_")
    return "\n".join(shown)  # at most 21 lines of at most ~133 characters: inside TEXT_LIMIT


def _quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` as a Slack quote of at most `limit` characters (each line marked; one line if that
    would not fit)."""
    said = escape_clipped(text.strip(), limit)
    if not said:
        return "_(nothing)_"
    quoted = "\n".join(f"> {line}" for line in said.splitlines())
    return quoted if len(quoted) <= limit else "> " + escape_clipped(" ".join(text.split()), limit - 2)


def _seconds(milliseconds: int) -> str:
    return f"{milliseconds} ms" if milliseconds < 1000 else f"{milliseconds / 1000:.1f} s"


def _section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
