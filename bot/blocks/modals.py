"""Modals opened from the card: Tags (pick existing, create new) and View lead.

Lead-provided strings appear only in mrkdwn text, escaped; plain_text (titles, options) carries only
our own words and tag names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.blocks import ids
from bot.blocks.card import NAME_LIMIT, lead_display_name
from bot.blocks.labels import channel_name
from bot.mrkdwn import escape_clipped
from core.models import Conversation

View = dict[str, Any]
Block = dict[str, Any]

MAX_OPTIONS = 100  # a static select's limit
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
NEW_TAGS_MAX_LENGTH = 500
FIELD_LIMIT = 1000  # escaped length of one lead detail; a section field allows 2,000 with its label


def build_tags_modal(conversation: Conversation, all_tags: list[str]) -> View:
    """The Tags modal: the conversation's tags preselected among all known ones, plus a free-text box.

    Saving sets the conversation's tags to exactly what is selected and typed (`parse_tags_submission`).
    """
    current = [tag.name for tag in conversation.tags]
    # The conversation's own tags first, so they are never the ones cut at the 100-option limit.
    known = list(dict.fromkeys([*current, *all_tags]))[:MAX_OPTIONS]
    blocks: list[Block] = [_about(conversation)]
    if known:  # a static select must offer at least one option
        select: Block = {
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
            "element": {
                "type": "plain_text_input",
                "action_id": ids.NEW_TAGS_ACTION,
                "max_length": NEW_TAGS_MAX_LENGTH,
                "placeholder": {"type": "plain_text", "text": "e.g. demo, pricing"},
            },
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


def parse_tags_submission(view_state_values: dict[str, Any]) -> list[str]:
    """The tag names a Tags modal submission asks for: the selected ones, then the new ones typed.

    Takes `view["state"]["values"]`. Names are stripped and listed once, in order; normalising them
    (case, spacing) is core's job. Raises ValueError when the state is not shaped as the modal built it.
    """
    selected = view_state_values.get(ids.EXISTING_TAGS_BLOCK, {}).get(ids.EXISTING_TAGS_ACTION, {})
    options = selected.get("selected_options") or []
    if not isinstance(options, list) or not all(
        isinstance(option, dict) and isinstance(option.get("value"), str) for option in options
    ):
        raise ValueError("selected_options is not a list of options with values")
    typed_text = view_state_values.get(ids.NEW_TAGS_BLOCK, {}).get(ids.NEW_TAGS_ACTION, {}).get("value") or ""
    if not isinstance(typed_text, str):
        raise ValueError("the new tags' value is not text")
    typed = _unique(typed_text.replace("\n", ",").split(","))
    return _unique([option["value"] for option in options] + typed)


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(name.strip() for name in names if name.strip()))


def build_lead_modal(conversation: Conversation) -> View:
    """View lead: who the lead is and where the conversation came from, read only."""
    lead = conversation.lead
    name = escape_clipped(lead_display_name(conversation), NAME_LIMIT)
    rows = [
        ("Email", lead.email),
        ("Phone", lead.phone),
        ("Company", lead.company),
        ("Title", lead.title),
        ("Profile", lead.profile_url),
        ("Channel", channel_name(conversation.channel)),
        ("Campaign", conversation.campaign.name if conversation.campaign is not None else None),
        ("Lead since", _date(lead.created_at)),
        ("Conversation started", _date(conversation.created_at)),
    ]
    fields = [
        # "—" rather than a missing row: "no email known" is worth saying.
        {"type": "mrkdwn", "text": f"*{label}*\n{escape_clipped(value, FIELD_LIMIT) if value else '—'}"}
        for label, value in rows
    ]
    return {
        "type": "modal",
        "callback_id": ids.LEAD_MODAL,
        "private_metadata": str(conversation.id),
        "title": {"type": "plain_text", "text": "Lead"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{name}*"}},
            {"type": "section", "fields": fields},
        ],
    }


def _about(conversation: Conversation) -> Block:
    name = escape_clipped(lead_display_name(conversation), NAME_LIMIT)
    channel = channel_name(conversation.channel)
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": f"*{name}* · {channel}"}]}


def _option(name: str) -> Block:
    return {
        "text": {"type": "plain_text", "text": name[:OPTION_TEXT_LIMIT]},
        "value": name[:OPTION_VALUE_LIMIT],
    }


def _date(at: datetime | None) -> str | None:
    if at is None:
        return None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return f"{at:%Y-%m-%d}"
