"""Thread entries: one per message, with sender, channel and time; and what became of a rep's message.

A rep's own message in the thread shows its delivery status as one reaction (the mirror swaps it as
the status moves on):

| status | reaction | shows as |
|---|---|---|
| queued, sending | `hourglass_flowing_sand` | ⏳ on its way |
| sent | `white_check_mark` | ✅ the provider accepted it |
| delivered | `inbox_tray` | 📥 it reached the lead's device / mailbox |
| read | `eyes` | 👀 the lead read it |
| failed | `warning` | ⚠️ plus a thread notice with the reason and a Retry button |
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.blocks import ids
from bot.blocks.labels import channel_name
from bot.mrkdwn import escape, escape_clipped
from core.models import Author, DeliveryStatus, Direction, Message

Block = dict[str, Any]

SECTION_TEXT_LIMIT = 3000
MAX_BLOCKS = 50  # per message
FALLBACK_PREVIEW = 200
SENDER_LIMIT = 150
REASON_LIMIT = 1500

_REACTIONS = {
    DeliveryStatus.QUEUED: "hourglass_flowing_sand",
    DeliveryStatus.SENDING: "hourglass_flowing_sand",
    DeliveryStatus.SENT: "white_check_mark",
    DeliveryStatus.DELIVERED: "inbox_tray",
    DeliveryStatus.READ: "eyes",
    DeliveryStatus.FAILED: "warning",
}
# Said next to the sender when the name alone does not tell who they are.
_ROLES = {Author.LEAD: "Lead", Author.MEMBER: "Teammate"}
_ESCAPED_SIZE = {"&": 5, "<": 4, ">": 4}  # len of &amp; &lt; &gt;


def delivery_reaction(status: DeliveryStatus | None) -> str | None:
    """The reaction (emoji name, no colons) that shows `status` on a rep's Slack message."""
    return None if status is None else _REACTIONS[status]


def sender_label(message: Message, lead_name: str) -> str:
    """Who wrote the message, raw (not escaped)."""
    if message.author == Author.LEAD:
        return lead_name
    if message.author == Author.AI:
        return "AI"
    if message.author == Author.MEMBER:
        # No member: written on the provider's side directly (e.g. "sent from LinkedIn").
        return message.member.name if message.member is not None else "Teammate"
    return "Threadline"


def written_on_provider(message: Message) -> bool:
    """Our message typed in the provider's own app (a rep writing in LinkedIn itself), not in Slack."""
    return (
        message.direction == Direction.OUTBOUND
        and message.author == Author.MEMBER
        and message.member_id is None
    )


def slack_time(at: datetime) -> str:
    """A time every reader sees in their own time zone; the fallback is UTC."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # naive means UTC here
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def build_thread_entry(message: Message, lead_name: str) -> tuple[str, list[Block]]:
    """(fallback text, blocks) for one message the bot posts into the conversation's thread.

    The body is split over as many sections as it needs (3,000 characters each) and cut, with a note
    saying how much, where a message would pass Slack's 50 blocks.
    """
    sender = escape_clipped(sender_label(message, lead_name), SENDER_LIMIT)
    about = [f"*{sender}*"]
    elsewhere = written_on_provider(message)
    if elsewhere:  # ours, but typed in the provider's own app: the lead has it, nothing to send
        about.append(f"sent from {channel_name(message.channel)}")
    else:
        if message.author in _ROLES:
            about.append(_ROLES[message.author])
        about.append(channel_name(message.channel))
    at = message.provider_sent_at or message.created_at
    if at is not None:  # unset only on a message that was never stored
        about.append(slack_time(at))
    context: Block = {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(about)}]}

    body = _body(message)
    sections: list[Block] = []
    shown_until = 0
    for start, end in _chunks(body, SECTION_TEXT_LIMIT):
        if len(sections) == MAX_BLOCKS - 2:  # keep one block for the truncation note
            hidden = len(body) - shown_until
            sections.append(_section(f"_… (truncated, {hidden} more characters)_"))
            break
        part = body[start:end].strip("\n")
        if part.strip():  # Slack rejects a section of nothing but whitespace
            sections.append(_section(escape(part)))
        shown_until = end

    preview = escape(body[:FALLBACK_PREVIEW]) + ("…" if len(body) > FALLBACK_PREVIEW else "")
    said = f"{sender} (sent from {channel_name(message.channel)})" if elsewhere else sender
    return f"{said}: {preview}", [context, *sections]


def build_delivery_failure(message: Message, reason: str) -> tuple[str, list[Block]]:
    """A notice in the thread: the rep's message did NOT reach the lead, why, and a Retry button."""
    why = escape_clipped(reason.strip() or "unknown reason", REASON_LIMIT)
    channel = channel_name(message.channel)
    text = f"Not delivered to the lead over {channel}: {why}"
    quoted = escape_clipped(" ".join(message.text.split()), 300) if message.text else ""
    detail = f":warning: *{text}*" + (f"\n> {quoted}" if quoted else "")
    blocks: list[Block] = [
        _section(detail),
        {
            "type": "actions",
            "block_id": ids.DELIVERY_FAILURE_BLOCK,
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


def _body(message: Message) -> str:
    # Non-text kinds already carry a description of what arrived ("[image] caption").
    if message.text and message.text.strip():
        return message.text
    return "(empty message)" if message.kind == "text" else f"[{message.kind}]"


def _section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _chunks(text: str, limit: int) -> list[tuple[int, int]]:
    """(start, end) spans of `text` whose escaped form fits in `limit` characters.

    Cut on the raw text so an entity is never split ("&am" + "p;"), preferring a line break, then a
    space, in the second half of the span.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        end, size = start, 0
        while end < len(text) and size + _ESCAPED_SIZE.get(text[end], 1) <= limit:
            size += _ESCAPED_SIZE.get(text[end], 1)
            end += 1
        if end < len(text):
            half = start + (end - start) // 2
            for separator in ("\n", " "):
                cut = text.rfind(separator, half, end)
                if cut != -1:
                    end = cut + 1  # the separator ends this part
                    break
        spans.append((start, end))
        start = end
    return spans
