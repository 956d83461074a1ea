"""The App Home tab: my conversations (needing attention first) and the unassigned queue."""

from __future__ import annotations

from typing import Any

from bot.blocks.card import STATUS_WORDS, ai_words, lead_display_name
from bot.blocks.labels import channel_name
from bot.mrkdwn import escape
from core.models import Conversation
from core.queries.home import HomeSummary


def _line(conversation: Conversation) -> str:
    name = escape(lead_display_name(conversation))
    company = f" ({escape(conversation.lead.company)})" if conversation.lead.company else ""
    unread = f" · *{conversation.unread_count} unread*" if conversation.unread_count else ""
    state = f"{STATUS_WORDS[conversation.status]} · {ai_words(conversation.ai_mode)}"
    where = f" · in <#{conversation.slack_channel}>" if conversation.slack_channel else ""
    return f"• *{name}*{company} · {channel_name(conversation.channel)} · {state}{unread}{where}"


def _section(title: str, conversations: list[Conversation], total: int, empty: str) -> list[dict[str, Any]]:
    lines = "\n".join(_line(c) for c in conversations) or empty
    more = f"\n_…and {total - len(conversations)} more_" if total > len(conversations) else ""
    return [
        {"type": "header", "text": {"type": "plain_text", "text": f"{title} ({total})"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": (lines + more)[:3000]}},
    ]


def build_home(summary: HomeSummary) -> dict[str, Any]:
    blocks = [
        *_section("My open conversations", summary.mine, summary.mine_open, "Nothing assigned to you."),
        {"type": "divider"},
        *_section("Unassigned", summary.unassigned, summary.unassigned_open, "Nobody is waiting."),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Reply in a conversation's thread to answer the lead; `/leads help` for more.",
                }
            ],
        },
    ]
    return {"type": "home", "blocks": blocks}


def build_home_for_outsider(reason: str) -> dict[str, Any]:
    """App Home for someone who may not see lead conversations: only why."""
    text = f"*Threadline* keeps the sales team's lead conversations.\n{escape(reason)}"
    return {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]}
