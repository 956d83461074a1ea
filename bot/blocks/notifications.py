"""Messages Threadline sends to teammates: DMs (assigned to you, your lead wrote) and the SLA reminder
in a conversation's thread. Lead text is escaped and clipped: it never pings and always fits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.blocks.labels import channel_name
from bot.mrkdwn import escape_clipped
from core.models import Conversation

Block = dict[str, Any]

WHO_LIMIT = 300  # the lead's name and company, escaped
PREVIEW_LIMIT = 500  # what the lead wrote, escaped; the thread has the rest
TEXT_LIMIT = 3000  # a section's text


def lead_label(conversation: Conversation) -> str:
    """The lead as a person would name them, with their company (raw, not escaped)."""
    lead = conversation.lead
    name = next((v.strip() for v in (lead.name, lead.phone, lead.email) if v and v.strip()), "a lead")
    return f"{name} ({lead.company})" if lead.company else name


def _who(conversation: Conversation) -> str:
    return escape_clipped(lead_label(conversation), WHO_LIMIT)


def _where(permalink: str | None) -> str:
    return f"<{permalink}|Open the conversation>" if permalink else "It is in the Threadline channel."


def _section(text: str) -> list[Block]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:TEXT_LIMIT]}}]


def build_assignment_dm(conversation: Conversation, permalink: str | None) -> tuple[str, list[Block]]:
    text = (
        f"You were assigned the {channel_name(conversation.channel)} conversation with {_who(conversation)}."
    )
    return text, _section(f"{text}\n{_where(permalink)}")


def build_message_dm(
    conversation: Conversation, latest: str, count: int, permalink: str | None
) -> tuple[str, list[Block]]:
    """Your lead wrote (`count` messages, the latest `latest`)."""
    what = "a message" if count == 1 else f"{count} messages"
    text = f"{_who(conversation)} sent {what} on {channel_name(conversation.channel)}."
    preview = escape_clipped(" ".join(latest.split()), PREVIEW_LIMIT) or "_(no text)_"
    quoted = f"> {preview}"
    settings = "Turn these messages off in Threadline's Home tab."
    blocks = [
        *_section(f"{text}\n{quoted}\n{_where(permalink)}"),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": settings}]},
    ]
    return text, blocks


def build_sla_reminder(
    conversation: Conversation, assignee_slack_id: str | None, waiting_since: datetime, now: datetime
) -> str:
    """The thread reminder: the assignee by mention, else the channel's attention (`<!here>`)."""
    who = f"<@{assignee_slack_id}>" if assignee_slack_id else "<!here>"
    waited = _duration((now - waiting_since).total_seconds())
    return (
        f":alarm_clock: {who} {_who(conversation)} has been waiting {waited} for a reply."
        " Answer in this thread."
    )[:TEXT_LIMIT]


def _duration(seconds: float) -> str:
    minutes = max(1, int(seconds // 60))
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{hours // 24} days"


def build_channel_health(channel: str, account: str, *, ok: bool, reason: str | None) -> str:
    """The channel-wide word that a lead channel broke or works again (the provider's reason escaped)."""
    name = f"*{channel_name(channel)}* ({escape_clipped(account, WHO_LIMIT)})"
    if ok:
        return f":white_check_mark: {name} works again: replies that waited for it are going out now."
    why = escape_clipped(reason or "no reason given", PREVIEW_LIMIT)
    return (
        f":warning: {name} is not connected: {why}. Replies to its leads wait and go out once it works "
        "again; `threadline check` shows its state. Someone with access to the account needs to fix it."
    )


def build_ai_handoff(conversation: Conversation, assignee_slack_id: str | None, reasons: list[str]) -> str:
    """The thread notice that the AI handed the conversation to the team, and why (never sent to the
    lead). The assignee by mention, else the channel's attention (`<!here>`). The reasons may quote the
    model, so they are escaped like lead text."""
    who = f"<@{assignee_slack_id}>" if assignee_slack_id else "<!here>"
    why = "; ".join(escape_clipped(" ".join(reason.split()), PREVIEW_LIMIT) for reason in reasons[:6])
    return (
        f":raising_hand: {who} The AI handed {_who(conversation)} over to the team and is paused: "
        f"{why or 'no reason given'}. Reply in this thread, or press Resume AI on the card."
    )[:TEXT_LIMIT]
