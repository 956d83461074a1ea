"""Direct messages Threadline sends to teammates."""

from __future__ import annotations

from typing import Any

from bot.blocks.labels import channel_name
from bot.mrkdwn import escape
from core.models import Conversation


def lead_label(conversation: Conversation) -> str:
    lead = conversation.lead
    name = lead.name or lead.phone or lead.email or "a lead"
    return f"{name} ({lead.company})" if lead.company else name


def build_assignment_dm(
    conversation: Conversation, permalink: str | None
) -> tuple[str, list[dict[str, Any]]]:
    who = escape(lead_label(conversation))
    where = f"<{permalink}|Open the conversation>" if permalink else "It is in the Threadline channel."
    text = f"You were assigned the {channel_name(conversation.channel)} conversation with {who}."
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{text}\n{where}"}},
    ]
    return text, blocks
