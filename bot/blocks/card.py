"""The card: the first message of a conversation's thread, redrawn whenever its state changes.

It shows the lead (name, title, company, email, phone; their picture when it is an https URL), the
channel, status, AI mode, assignee, tags, campaign, unread count and last activity. It states
everything in words — `Open`/`Pending`/`Closed`, `AI: active|paused|manual`, the assignee as a
mention, the tags — so a glance, a notification or a screen reader tells the state without decoding
icons; emoji only decorate. Every string that came from a lead (name, company, title, email, phone)
and every free-text name (tags, campaign) is escaped and clipped to Block Kit's limits.

Last activity is shown to the minute (what Slack's `{time}` shows), so the card — whose fingerprint
decides whether the mirror calls chat.update — changes only when what a reader sees changes.

The buttons follow the state: only what can be done now is offered.

| button | shown when |
|---|---|
| Take over | AI is active, or nobody is assigned |
| Resume AI | AI is paused or manual, the conversation is not closed, and an agent runs |
| Manual only | AI is not manual |
| Tags, View lead, Edit lead | always |
| Close (asks to confirm) / Reopen | open or pending / closed |
| Assign… (users select) | always, preset to the assignee |
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from bot.blocks import ids
from bot.blocks.labels import channel_icon, channel_name, thread_link
from bot.mrkdwn import escape_clipped
from core.models import AIMode, Conversation, Status
from core.queries.lead import OtherConversation

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
CONTACT_LIMIT = 400  # email, phone
ALT_LIMIT = 200  # the picture's alt text
URL_LIMIT = 3000  # an image_url

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


def build_card(
    conversation: Conversation, *, ai_available: bool, elsewhere: Sequence[OtherConversation] = ()
) -> tuple[str, list[Block]]:
    """(fallback text, blocks) for the conversation's card; the text says the same state in words.

    Without an AI agent on the server (`ai_available` False), Resume AI is not offered. `elsewhere`:
    the lead's other threads (other channels, earlier threads), linked under *Also*.
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
        f"*Unread*\n{_unread(conversation)}",
        f"*Last activity*\n{_last_activity(conversation, slack_date=True)}",
    ]
    if conversation.csat_score is not None:
        fields.append(f"*Satisfaction*\n{'⭐' * conversation.csat_score} {conversation.csat_score}/5")
    if elsewhere:
        fields.append(f"*Also*\n{_elsewhere(elsewhere)}")
    headline: Block = {"type": "section", "text": {"type": "mrkdwn", "text": _headline(conversation)}}
    picture = picture_of(conversation)
    if picture is not None:
        headline["accessory"] = picture
    blocks: list[Block] = [
        headline,
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
    lines = [f"{channel_icon(conversation.channel)} *{name}*"]
    about = ", ".join(escape_clipped(part, DETAIL_LIMIT) for part in (lead.title, lead.company) if part)
    if about:
        lines.append(about)
    contact = " · ".join(escape_clipped(part, CONTACT_LIMIT) for part in (lead.email, lead.phone) if part)
    if contact:
        lines.append(contact)
    return "\n".join(lines)


def picture_of(conversation: Conversation) -> Block | None:
    """The lead's picture as an image element, or None unless it is an https URL."""
    # Slack fetches the image itself: only a secure URL, never http or anything stranger.
    url = (conversation.lead.avatar_url or "").strip()
    if not url.lower().startswith("https://") or len(url) > URL_LIMIT or any(c.isspace() for c in url):
        return None
    alt = f"Picture of {lead_display_name(conversation)}"
    return {
        "type": "image",
        "image_url": url,
        "alt_text": alt[: ALT_LIMIT - 1] + "…" if len(alt) > ALT_LIMIT else alt,
    }


def _unread(conversation: Conversation) -> str:
    count = conversation.unread_count or 0
    return f"{count} new from the lead" if count else "None"


def _last_activity(conversation: Conversation, *, slack_date: bool) -> str:
    at = conversation.last_activity_at
    if at is None:  # a conversation not stored yet
        return "—"
    at = (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)).replace(
        second=0, microsecond=0
    )
    fallback = f"{at:%Y-%m-%d %H:%M} UTC"
    if not slack_date:
        return fallback
    # Slack writes it in each reader's own time zone ("Today 09:30"); the fallback is for old clients.
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _fallback_text(conversation: Conversation, assignee: str) -> str:
    # Read aloud and shown in notifications: the same state as the blocks, in words, no emoji.
    lead = conversation.lead
    about = ", ".join(escape_clipped(part, DETAIL_LIMIT) for part in (lead.title, lead.company) if part)
    parts = [
        channel_name(conversation.channel),
        escape_clipped(lead_display_name(conversation), NAME_LIMIT) + (f" ({about})" if about else ""),
        STATUS_WORDS[conversation.status],
        ai_words(conversation.ai_mode),
        assignee,
    ]
    if conversation.tags:
        parts.append("Tags: " + _tag_list(conversation, FIELD_TEXT_LIMIT, code=False))
    if conversation.campaign is not None:
        parts.append(f"Campaign: {_campaign(conversation)}")
    if conversation.unread_count:
        parts.append(f"{conversation.unread_count} unread")
    if conversation.csat_score is not None:
        parts.append(f"Rated {conversation.csat_score}/5")
    parts.append(f"Last activity {_last_activity(conversation, slack_date=False)}")
    return " · ".join(parts)


def _elsewhere(others: Sequence[OtherConversation]) -> str:
    # A link names only the channel: a reader outside that Slack channel learns that a thread
    # exists, not what it says (Slack shows it only to its members).
    links = []
    for other in others:
        label = f"{channel_icon(other.channel)} {channel_name(other.channel)}"
        link = thread_link(other.slack_channel, other.slack_thread_ts)
        links.append(f"<{link}|{label}>" if link else label)
    return " · ".join(links)


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
    buttons.append(_button("Edit lead", ids.EDIT_LEAD, value))
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
