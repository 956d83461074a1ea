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

A reply the channel refused because its reply window is closed (WhatsApp's 24 hours) gets the same ⚠️
and a notice offering the channel's templates, one button each.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.blocks import ids
from bot.blocks.ai import build_ai_buttons
from bot.blocks.labels import channel_name
from bot.mrkdwn import escape, escape_clipped
from core.errors import NEEDS_TEMPLATE
from core.models import Author, DeliveryStatus, Direction, Message
from core.ports import Template

Block = dict[str, Any]

SECTION_TEXT_LIMIT = 3000
MAX_BLOCKS = 50  # per message
FALLBACK_PREVIEW = 200
SENDER_LIMIT = 150
REASON_LIMIT = 1500
SUBJECT_LIMIT = 200
AUTO_REPLY = "auto_reply"  # the kind of an out-of-office or other automatic answer (email)
FULL_TEXT_SECTIONS = 95  # a modal takes 100 blocks

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


QUOTE_LIMIT = 150


@dataclass(frozen=True)
class Quote:
    """The earlier message an entry replies (or reacts) to: who wrote it and what it said, or nothing
    when Threadline does not have it."""

    sender: str | None = None
    text: str | None = None
    reaction: bool = False  # the entry is a lead's reaction shown as a line


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
        and message.member is None
    )


def slack_time(at: datetime) -> str:
    """A time every reader sees in their own time zone; the fallback is UTC."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # naive means UTC here
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def build_thread_entry(
    message: Message, lead_name: str, quote: Quote | None = None
) -> tuple[str, list[Block]]:
    """(fallback text, blocks) for one message the bot posts into the conversation's thread.

    The body is split over as many sections as it needs (3,000 characters each) and cut, with a note
    saying how much, where a message would pass Slack's 50 blocks. `quote`: the message it answers,
    shown as a "↪ replying to …" line above the body.
    """
    sender = escape_clipped(sender_label(message, lead_name), SENDER_LIMIT)
    by_ai = message.author == Author.AI and message.direction == Direction.OUTBOUND
    # The AI's own answer is marked as such at a glance, and carries Why? and 👍/👎 (bot/blocks/ai.py).
    about = [f":robot_face: *{sender}*", "AI agent"] if by_ai else [f"*{sender}*"]
    elsewhere = written_on_provider(message)
    if elsewhere:  # ours, but typed in the provider's own app: the lead has it, nothing to send
        about.append(f"sent from {channel_name(message.channel)}")
    else:
        if message.author in _ROLES:
            about.append(_ROLES[message.author])
        about.append(channel_name(message.channel))
    if message.kind == AUTO_REPLY:  # an out-of-office answer: shown, not the lead answering
        about.append("automatic reply")
    at = message.provider_sent_at or message.created_at
    if at is not None:  # unset only on a message that was never stored
        about.append(slack_time(at))
    if message.subject and message.direction == Direction.INBOUND:
        about.append(f"“{escape_clipped(message.subject, SUBJECT_LIMIT)}”")
    context: Block = {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(about)}]}
    heading = [context] if quote is None else [context, _quote_line(quote)]
    # A mail shown without its quoted history and signature: the whole of it is a click away. An AI
    # answer: why it said so, and the team's 👍/👎, are a click away too.
    trimmed = [_show_full_button(message)] if message.full_text else []
    if by_ai and message.id is not None:
        trimmed.append(build_ai_buttons(message.id))

    body = _body(message)
    sections: list[Block] = []
    shown_until = 0
    for start, end in _chunks(body, SECTION_TEXT_LIMIT):
        if len(sections) == MAX_BLOCKS - len(heading) - len(trimmed) - 1:  # one for the truncation note
            hidden = len(body) - shown_until
            sections.append(_section(f"_… (truncated, {hidden} more characters)_"))
            break
        part = body[start:end].strip("\n")
        if part.strip():  # Slack rejects a section of nothing but whitespace
            sections.append(_section(escape(part)))
        shown_until = end

    preview = escape(body[:FALLBACK_PREVIEW]) + ("…" if len(body) > FALLBACK_PREVIEW else "")
    said = f"{sender} (sent from {channel_name(message.channel)})" if elsewhere else sender
    return f"{said}: {preview}", [*heading, *sections, *trimmed]


def _show_full_button(message: Message) -> Block:
    return {
        "type": "actions",
        "block_id": ids.FULL_MESSAGE_BLOCK,
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Show full email"},
                "action_id": ids.SHOW_FULL_MESSAGE,
                "value": str(message.id),
            }
        ],
    }


def _quote_line(quote: Quote) -> Block:
    lead_in = "↪ to" if quote.reaction else "↪ replying to"
    if quote.text is None:
        said = f"{lead_in} an earlier message Threadline does not have"
    else:
        who = escape_clipped(quote.sender or "someone", SENDER_LIMIT)
        words = escape_clipped(" ".join(quote.text.split()), QUOTE_LIMIT)
        said = f"{lead_in} *{who}*: “{words}”" if words else f"{lead_in} *{who}*"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": said}]}


def build_delivery_failure(
    message: Message, reason: str, templates: Sequence[Template] = ()
) -> tuple[str, list[Block]]:
    """A notice in the thread: the rep's message did NOT reach the lead, why, and a Retry button.

    When the channel's reply window is closed (`delivery_error_code` NEEDS_TEMPLATE), the notice offers
    the channel's templates, one button each (a click sends that template as the rep's message).
    """
    why = escape_clipped(reason.strip() or "unknown reason", REASON_LIMIT)
    channel = channel_name(message.channel)
    window_closed = message.delivery_error_code == NEEDS_TEMPLATE
    text = f"Not delivered to the lead over {channel}: {why}"
    if window_closed:
        text = f"Not sent: the lead's {channel} reply window is closed. {why}"
    quoted = escape_clipped(" ".join(message.text.split()), 300) if message.text else ""
    detail = f":warning: *{text}*" + (f"\n> {quoted}" if quoted else "")
    retry = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Retry"},
        "action_id": ids.RETRY_DELIVERY,
        "value": str(message.id),
    }
    blocks: list[Block] = [_section(detail)]
    if window_closed:
        blocks += _template_buttons(message.id, templates)
    blocks.append({"type": "actions", "block_id": ids.DELIVERY_FAILURE_BLOCK, "elements": [retry]})
    return text, blocks


TEMPLATE_BUTTONS = 25  # Slack's most elements in one actions block
MAX_TEMPLATES = TEMPLATE_BUTTONS * 4  # the notice stays far inside Slack's 50 blocks
BUTTON_TEXT_LIMIT = 75


def _template_buttons(message_id: int, templates: Sequence[Template]) -> list[Block]:
    buttons = [
        {
            "type": "button",
            "text": {
                "type": "plain_text",
                "text": _clip(f"Send {template.name} ({template.language})", BUTTON_TEXT_LIMIT),
            },
            "action_id": ids.SEND_TEMPLATE,
            "value": json.dumps({"m": message_id, "n": template.name, "l": template.language}),
        }
        for template in templates[:MAX_TEMPLATES]
    ]
    return [
        {
            "type": "actions",
            "block_id": f"{ids.TEMPLATES_BLOCK}.{start // TEMPLATE_BUTTONS}",
            "elements": buttons[start : start + TEMPLATE_BUTTONS],
        }
        for start in range(0, len(buttons), TEMPLATE_BUTTONS)
    ]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _body(message: Message) -> str:
    if message.kind == "reaction":  # one the mirror could not put on the entry it reacts to
        return f"reacted {message.text}" if message.text.strip() else "took back their reaction"
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


def build_full_message_modal(sender: str, subject: str | None, full_text: str) -> dict[str, Any]:
    """A modal with the whole of a mail shown trimmed in the thread: who, the subject, every line."""
    about = f"*{escape_clipped(sender, SENDER_LIMIT)}*"
    if subject:
        about += f" · “{escape_clipped(subject, SUBJECT_LIMIT)}”"
    blocks: list[Block] = [{"type": "context", "elements": [{"type": "mrkdwn", "text": about}]}]
    shown_until = 0
    for start, end in _chunks(full_text, SECTION_TEXT_LIMIT):
        if len(blocks) > FULL_TEXT_SECTIONS:
            blocks.append(_section(f"_… (truncated, {len(full_text) - shown_until} more characters)_"))
            break
        part = full_text[start:end].strip("\n")
        if part.strip():
            blocks.append(_section(escape(part)))
        shown_until = end
    return {
        "type": "modal",
        "callback_id": ids.FULL_MESSAGE_MODAL,
        "title": {"type": "plain_text", "text": "Full email"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": blocks,
    }
