"""The card: the first message of a conversation's thread, redrawn whenever its state changes.

It states everything in words — `Open`/`Pending`/`Closed`, `AI: active|paused|manual`, the assignee
as a mention, the tags — so a glance, a notification or a screen reader tells the state without
decoding icons. Every string that came from a lead is escaped.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bot.blocks import ids
from bot.mrkdwn import escape
from core.models import AIMode, Channel, Conversation, Status

CHANNEL_NAMES = {Channel.WHATSAPP: "WhatsApp", Channel.EMAIL: "Email", Channel.LINKEDIN: "LinkedIn"}
CHANNEL_EMOJI = {
    Channel.WHATSAPP: ":speech_balloon:",
    Channel.EMAIL: ":email:",
    Channel.LINKEDIN: ":briefcase:",
}
STATUS_WORDS = {Status.OPEN: "Open", Status.PENDING: "Pending", Status.CLOSED: "Closed"}
STATUS_EMOJI = {
    Status.OPEN: ":large_orange_circle:",
    Status.PENDING: ":hourglass:",
    Status.CLOSED: ":white_circle:",
}

BUTTON_TEXT_LIMIT = 75
SECTION_TEXT_LIMIT = 3000


def lead_display_name(conversation: Conversation) -> str:
    lead = conversation.lead
    return lead.name or lead.phone or lead.email or "Unknown lead"


def ai_words(mode: AIMode) -> str:
    return f"AI: {mode.value}"


def build_card(conversation: Conversation) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for the conversation's card."""
    lead = conversation.lead
    name = escape(lead_display_name(conversation))
    who = ", ".join(escape(part) for part in (lead.title, lead.company) if part)
    channel = CHANNEL_NAMES[conversation.channel]
    status = STATUS_WORDS[conversation.status]
    assignee = f"<@{conversation.assignee.slack_user_id}>" if conversation.assignee else "Unassigned"
    tags = ", ".join(f"`{escape(tag.name)}`" for tag in conversation.tags) or "No tags"
    campaign = escape(conversation.campaign.name) if conversation.campaign else "—"

    headline = f"{CHANNEL_EMOJI[conversation.channel]} *{name}*" + (f" · {who}" if who else "")
    fields = [
        f"*Channel*\n{channel}",
        f"*Status*\n{STATUS_EMOJI[conversation.status]} {status}",
        f"*AI*\n{ai_words(conversation.ai_mode)}",
        f"*Assignee*\n{assignee}",
        f"*Tags*\n{tags}",
        f"*Campaign*\n{campaign}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(headline, SECTION_TEXT_LIMIT)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _clip(f, 2000)} for f in fields]},
        {"type": "actions", "block_id": ids.CARD_ACTIONS_BLOCK, "elements": _buttons(conversation)},
        {"type": "actions", "block_id": ids.CARD_ASSIGN_BLOCK, "elements": [_assign_select(conversation)]},
    ]
    plain_assignee = conversation.assignee.name if conversation.assignee else "Unassigned"
    text = (
        f"{channel} · {lead_display_name(conversation)}"
        + (f" ({lead.company})" if lead.company else "")
        + f" · {status} · {ai_words(conversation.ai_mode)} · {plain_assignee}"
    )
    return escape(text), blocks


def card_fingerprint(text: str, blocks: list[dict[str, Any]]) -> str:
    """What the card shows, as a hash: the mirror calls chat.update only when it changes."""
    return hashlib.sha256(json.dumps([text, blocks], sort_keys=True).encode()).hexdigest()


def _buttons(conversation: Conversation) -> list[dict[str, Any]]:
    value = str(conversation.id)
    closed = conversation.status == Status.CLOSED
    buttons: list[dict[str, Any]] = []
    if not closed and (conversation.ai_mode == AIMode.ACTIVE or conversation.assignee is None):
        buttons.append(_button("Take over", ids.TAKE_OVER, value, style="primary"))
    if not closed and conversation.ai_mode != AIMode.ACTIVE:
        buttons.append(_button("Resume AI", ids.RESUME_AI, value))
    if not closed and conversation.ai_mode != AIMode.MANUAL:
        buttons.append(_button("Manual only", ids.MANUAL_ONLY, value))
    buttons.append(_button("Tags", ids.EDIT_TAGS, value))
    buttons.append(_button("View lead", ids.VIEW_LEAD, value))
    if closed:
        buttons.append(_button("Reopen", ids.REOPEN, value))
    else:
        close = _button("Close", ids.CLOSE, value)
        close["confirm"] = {
            "title": {"type": "plain_text", "text": "Close this conversation?"},
            "text": {
                "type": "plain_text",
                "text": "It moves to Closed; a new message from the lead reopens it.",
            },
            "confirm": {"type": "plain_text", "text": "Close"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
        buttons.append(close)
    return buttons


def _assign_select(conversation: Conversation) -> dict[str, Any]:
    select: dict[str, Any] = {
        "type": "users_select",
        "action_id": ids.ASSIGN,
        "placeholder": {"type": "plain_text", "text": "Assign…"},
    }
    if conversation.assignee is not None:
        select["initial_user"] = conversation.assignee.slack_user_id
    return select


def _button(label: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": label[:BUTTON_TEXT_LIMIT]},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
