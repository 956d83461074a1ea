"""Modals opened from the card: Tags (pick existing, create new) and View lead."""

from __future__ import annotations

from typing import Any

from bot.blocks import ids
from bot.blocks.card import CHANNEL_NAMES, lead_display_name
from bot.mrkdwn import escape
from core.models import Conversation

MAX_OPTIONS = 100
OPTION_TEXT_LIMIT = 75


def _option(name: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": name[:OPTION_TEXT_LIMIT]}, "value": name[:150]}


def build_tags_modal(conversation: Conversation, all_tags: list[str]) -> dict[str, Any]:
    current = [tag.name for tag in conversation.tags]
    known = list(dict.fromkeys([*current, *all_tags]))[:MAX_OPTIONS]
    blocks: list[dict[str, Any]] = []
    if known:  # a static select needs at least one option
        select: dict[str, Any] = {
            "type": "multi_static_select",
            "action_id": ids.EXISTING_TAGS_ACTION,
            "placeholder": {"type": "plain_text", "text": "Choose tags"},
            "options": [_option(name) for name in known],
        }
        if current:
            select["initial_options"] = [_option(name) for name in current if name in known]
        blocks.append(
            {
                "type": "input",
                "block_id": ids.EXISTING_TAGS_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Tags"},
                "element": select,
            }
        )
    blocks.append(
        {
            "type": "input",
            "block_id": ids.NEW_TAGS_BLOCK,
            "optional": True,
            "label": {"type": "plain_text", "text": "New tags (comma-separated)"},
            "element": {"type": "plain_text_input", "action_id": ids.NEW_TAGS_ACTION, "max_length": 500},
        }
    )
    return {
        "type": "modal",
        "callback_id": ids.TAGS_MODAL,
        "private_metadata": str(conversation.id),
        "title": {"type": "plain_text", "text": "Tags"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def parse_tags_submission(values: dict[str, Any]) -> list[str]:
    """The tag names chosen in the Tags modal: selected ones plus the new ones typed."""
    selected = values.get(ids.EXISTING_TAGS_BLOCK, {}).get(ids.EXISTING_TAGS_ACTION, {})
    names = [option["value"] for option in selected.get("selected_options") or []]
    typed = values.get(ids.NEW_TAGS_BLOCK, {}).get(ids.NEW_TAGS_ACTION, {}).get("value") or ""
    names += [part.strip() for part in typed.split(",") if part.strip()]
    return list(dict.fromkeys(names))


def build_lead_modal(conversation: Conversation) -> dict[str, Any]:
    lead = conversation.lead
    rows = [
        ("Name", lead_display_name(conversation)),
        ("Email", lead.email),
        ("Phone", lead.phone),
        ("Company", lead.company),
        ("Title", lead.title),
        ("Profile", lead.profile_url),
        ("Channel", CHANNEL_NAMES[conversation.channel]),
        ("Campaign", conversation.campaign.name if conversation.campaign else None),
        ("First contact", f"{lead.created_at:%Y-%m-%d}" if lead.created_at else None),
    ]
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{escape(value)[:1900]}"} for label, value in rows if value
    ]
    return {
        "type": "modal",
        "callback_id": ids.LEAD_MODAL,
        "title": {"type": "plain_text", "text": "Lead"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "fields": fields[:10]}],
    }
