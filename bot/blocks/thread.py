"""Thread entries: one per message, sender and channel shown; and what became of a rep's message.

Delivery status shows as one reaction on the rep's own Slack message:

| status | reaction |
|---|---|
| queued, sending | :hourglass_flowing_sand: |
| sent | :white_check_mark: |
| delivered | :inbox_tray: |
| read | :eyes: |
| failed | :warning: (plus a thread notice with the reason and a Retry button) |
"""

from __future__ import annotations

from typing import Any

from bot.blocks import ids
from bot.blocks.card import CHANNEL_NAMES
from bot.mrkdwn import escape
from core.models import Author, DeliveryStatus, Message

SECTION_TEXT_LIMIT = 3000
MAX_BLOCKS = 50
FALLBACK_PREVIEW = 200

_REACTIONS = {
    DeliveryStatus.QUEUED: "hourglass_flowing_sand",
    DeliveryStatus.SENDING: "hourglass_flowing_sand",
    DeliveryStatus.SENT: "white_check_mark",
    DeliveryStatus.DELIVERED: "inbox_tray",
    DeliveryStatus.READ: "eyes",
    DeliveryStatus.FAILED: "warning",
}


def delivery_reaction(status: DeliveryStatus | None) -> str | None:
    return None if status is None else _REACTIONS[status]


def sender_label(message: Message, lead_name: str) -> str:
    if message.author == Author.LEAD:
        return lead_name
    if message.author == Author.AI:
        return "AI"
    if message.author == Author.MEMBER and message.member is not None:
        return message.member.name
    return "Threadline"


def build_thread_entry(message: Message, lead_name: str) -> tuple[str, list[dict[str, Any]]]:
    sender = escape(sender_label(message, lead_name))
    body = escape(message.text or f"[{message.kind}]")
    at = message.provider_sent_at or message.created_at
    when = f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"
    role = {Author.LEAD: "Lead", Author.AI: "AI", Author.MEMBER: "Team", Author.SYSTEM: "System"}[
        message.author
    ]
    context = {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": f"*{sender}* · {role} · {CHANNEL_NAMES[message.channel]} · {when}"}
        ],
    }
    sections: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": part}} for part in _split(body)
    ]
    if len(sections) > MAX_BLOCKS - 1:
        shown = sections[: MAX_BLOCKS - 2]
        hidden = sum(len(s["text"]["text"]) for s in sections[MAX_BLOCKS - 2 :])
        shown.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"… (truncated, {hidden} more characters)"},
            }
        )
        sections = shown
    preview = body[:FALLBACK_PREVIEW] + ("…" if len(body) > FALLBACK_PREVIEW else "")
    return f"{sender}: {preview}", [context, *sections]


def build_delivery_failure(message: Message, reason: str) -> tuple[str, list[dict[str, Any]]]:
    """A notice in the thread: the rep's message did not reach the lead, why, and a Retry button."""
    text = f":warning: Not delivered to the lead: {escape(reason)}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_TEXT_LIMIT]}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Retry"},
                    "action_id": ids.RETRY_DELIVERY,
                    "value": str(message.id),
                }
            ],
        },
    ]
    return text, blocks


def _split(text: str, limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """Cut long text into section-sized parts, at a line or word break when there is one."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = text.rfind(" ", 0, limit)
        if cut < limit // 2 or _inside_entity(text, cut):
            cut = limit
            while _inside_entity(text, cut):  # never split "&amp;" into "&am" + "p;"
                cut -= 1
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    parts.append(text)
    return [part for part in parts if part] or [" "]


def _inside_entity(text: str, cut: int) -> bool:
    start = text.rfind("&", max(0, cut - 5), cut)
    return start != -1 and ";" in text[start : cut + 5] and ";" not in text[start:cut]
