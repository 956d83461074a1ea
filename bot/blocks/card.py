"""The card: the first message of a conversation's thread, redrawn whenever its state changes.

It states everything in words — `Open`/`Pending`/`Closed`, `AI: active|paused|manual`, the assignee
as a mention, the tags — so a glance, a notification or a screen reader tells the state without
decoding icons; emoji only decorate. Every string that came from a lead (name, company, title) and
every free-text name (tags, campaign) is escaped and clipped to Block Kit's limits.

The buttons follow the state: only what can be done now is offered.

| button | shown when |
|---|---|
| Take over | AI is active, or nobody is assigned |
| Resume AI | AI is paused or manual, the conversation is not closed, and an agent runs |
| Manual only | AI is not manual |
| Tags, View lead | always |
| Close (asks to confirm) / Reopen | open or pending / closed |
| Assign… (users select) | always, preset to the assignee |
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bot.blocks import ids
from bot.blocks.labels import channel_icon, channel_name
from bot.mrkdwn import escape_clipped
from core.models import AIMode, Conversation, Status

Block = dict[str, Any]

STATUS_WORDS = {Status.OPEN: "Open", Status.PENDING: "Pending", Status.CLOSED: "Closed"}
STATUS_EMOJI = {
    Status.OPEN: ":large_orange_circle:",
    Status.PENDING: ":hourglass:",
    Status.CLOSED: ":white_circle:",
}

FIELD_TEXT_LIMIT = 2000  # a section field's text
NAME_LIMIT = 150  # a lead's name as shown (escaped); the header-sized budget, well inside a section
DETAIL_LIMIT = 300  # company, title, campaign, one tag

# Closing is the one click that hides a conversation from everyone's lists: ask first.
_CLOSE_CONFIRM = {
    "title": {"type": "plain_text", "text": "Close this conversation?"},
    "text": {"type": "plain_text", "text": "It moves to Closed. A new message from the lead reopens it."},
    "confirm": {"type": "plain_text", "text": "Close"},
    "deny": {"type": "plain_text", "text": "Cancel"},
}


def lead_display_name(conversation: Conversation) -> str:
    """The lead as a person would name them (raw, not escaped): name, else phone, else email."""
    lead = conversation.lead
    for candidate in (lead.name, lead.phone, lead.email):
        if candidate and candidate.strip():
            return candidate.strip()
    return "Unknown lead"


def ai_words(mode: AIMode) -> str:
    return f"AI: {mode.value}"


def build_card(conversation: Conversation, *, ai_available: bool) -> tuple[str, list[Block]]:
    """(fallback text, blocks) for the conversation's card; the text says the same state in words.

    Without an AI agent on the server (`ai_available` False), Resume AI is not offered.
    """
    channel = channel_name(conversation.channel)
    status = STATUS_WORDS[conversation.status]
    assignee = _assignee(conversation)
    fields = [
        f"*Channel*\n{channel_icon(conversation.channel)} {channel}",
        f"*Status*\n{STATUS_EMOJI[conversation.status]} {status}",
        f"*AI*\n{ai_words(conversation.ai_mode)}",
        f"*Assignee*\n{assignee}",
        f"*Tags*\n{_tag_list(conversation, FIELD_TEXT_LIMIT - len('*Tags*'), code=True)}",
        f"*Campaign*\n{_campaign(conversation)}",
    ]
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _headline(conversation)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": field} for field in fields]},
        {
            "type": "actions",
            "block_id": ids.CARD_ACTIONS_BLOCK,
            "elements": _buttons(conversation, ai_available),
        },
        {"type": "actions", "block_id": ids.CARD_ASSIGN_BLOCK, "elements": [_assign_select(conversation)]},
    ]
    return _fallback_text(conversation, assignee), blocks


def card_fingerprint(text: str, blocks: list[Block]) -> str:
    """What the card shows, as a sha256 hex: the mirror calls chat.update only when it changes."""
    rendered = json.dumps([text, blocks], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(rendered.encode()).hexdigest()


# --- what the card says --------------------------------------------------------------------------------


def _headline(conversation: Conversation) -> str:
    lead = conversation.lead
    name = escape_clipped(lead_display_name(conversation), NAME_LIMIT)
    about = ", ".join(escape_clipped(part, DETAIL_LIMIT) for part in (lead.title, lead.company) if part)
    return f"{channel_icon(conversation.channel)} *{name}*" + (f" · {about}" if about else "")


def _fallback_text(conversation: Conversation, assignee: str) -> str:
    # Read aloud and shown in notifications: the same state as the blocks, in words, no emoji.
    company = conversation.lead.company
    parts = [
        channel_name(conversation.channel),
        escape_clipped(lead_display_name(conversation), NAME_LIMIT)
        + (f" ({escape_clipped(company, DETAIL_LIMIT)})" if company else ""),
        STATUS_WORDS[conversation.status],
        ai_words(conversation.ai_mode),
        assignee,
    ]
    if conversation.tags:
        parts.append("Tags: " + _tag_list(conversation, FIELD_TEXT_LIMIT, code=False))
    if conversation.campaign is not None:
        parts.append(f"Campaign: {_campaign(conversation)}")
    return " · ".join(parts)


def _assignee(conversation: Conversation) -> str:
    # A mention renders as the teammate's current name, wherever and whenever the card is read.
    member = conversation.assignee
    return f"<@{member.slack_user_id}>" if member is not None else "Unassigned"


def _campaign(conversation: Conversation) -> str:
    campaign = conversation.campaign
    return escape_clipped(campaign.name, DETAIL_LIMIT) if campaign is not None else "—"


def _tag_list(conversation: Conversation, limit: int, *, code: bool) -> str:
    """The tags, comma-separated, within `limit` characters ("+N more" when they do not all fit)."""
    names = [escape_clipped(tag.name, DETAIL_LIMIT) for tag in conversation.tags]
    if not names:
        return "No tags"
    shown: list[str] = []
    used = 0
    for index, name in enumerate(names):
        item = f"`{name}`" if code else name
        left = len(names) - index
        if used + len(item) + len(f" +{left} more") > limit:  # keep room to say what was left out
            return ", ".join(shown) + f" +{left} more"
        shown.append(item)
        used += len(item) + 2
    return ", ".join(shown)


# --- what can be done ----------------------------------------------------------------------------------


def _buttons(conversation: Conversation, ai_available: bool) -> list[Block]:
    value = str(conversation.id)
    closed = conversation.status == Status.CLOSED
    mode = conversation.ai_mode
    buttons: list[Block] = []
    # A closed conversation offers only what makes sense before reopening it.
    if not closed and (mode == AIMode.ACTIVE or conversation.assignee is None):
        buttons.append(_button("Take over", ids.TAKE_OVER, value, style="primary"))
    if mode != AIMode.ACTIVE and not closed and ai_available:
        buttons.append(_button("Resume AI", ids.RESUME_AI, value))
    if mode != AIMode.MANUAL and not closed:
        buttons.append(_button("Manual only", ids.MANUAL_ONLY, value))
    buttons.append(_button("Tags", ids.EDIT_TAGS, value))
    buttons.append(_button("View lead", ids.VIEW_LEAD, value))
    if closed:
        buttons.append(_button("Reopen", ids.REOPEN, value))
    else:
        buttons.append({**_button("Close", ids.CLOSE, value), "confirm": _CLOSE_CONFIRM})
    return buttons


def _assign_select(conversation: Conversation) -> Block:
    select: Block = {
        "type": "users_select",
        "action_id": ids.ASSIGN,
        "placeholder": {"type": "plain_text", "text": "Assign…"},
    }
    if conversation.assignee is not None:
        select["initial_user"] = conversation.assignee.slack_user_id
    return select


def _button(label: str, action_id: str, value: str, *, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button
