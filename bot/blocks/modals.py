"""Modals opened from the card: Tags (pick existing, create new), View lead and Edit lead.

Lead-provided strings appear in mrkdwn text escaped, and in Edit lead's inputs as the values to edit
(plain text, which Slack never reads as markup); other plain_text (titles, options) carries only our
own words and tag names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.blocks import ids
from bot.blocks.card import NAME_LIMIT, STATUS_WORDS, lead_display_name, picture_of
from bot.blocks.home import thread_link
from bot.blocks.labels import channel_icon, channel_name
from bot.mrkdwn import escape_clipped
from core.actions.leads import LIMITS as LEAD_LIMITS
from core.actions.leads import LeadEdit
from core.models import Campaign, Conversation
from core.queries.lead import LeadView

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


def build_lead_modal(view: LeadView, *, workspace_url: str | None) -> View:
    """View lead: who the lead is, their campaign, their numbers and their other conversations.

    `workspace_url` (https://….slack.com/) spells the links to other threads; without it they are
    named by channel only.
    """
    conversation = view.conversation
    lead = conversation.lead
    person: Block = {"type": "section", "text": {"type": "mrkdwn", "text": _person(conversation)}}
    picture = picture_of(conversation)
    if picture is not None:
        person["accessory"] = picture
    contact = [
        ("Email", lead.email),
        ("Phone", lead.phone),
        ("Company", lead.company),
        ("Title", lead.title),
        ("Profile", lead.profile_url),
        ("Score", str(lead.score) if lead.score is not None else None),
        ("Lead since", _date(lead.created_at)),
    ]
    campaigns = [
        ("Campaign of this conversation", _name(conversation.campaign)),
        ("Lead's campaign", _name(lead.campaign)),
        ("Channel", channel_name(conversation.channel)),
        ("Conversation started", _date(conversation.created_at)),
    ]
    numbers = [
        ("Messages from the lead", str(view.from_lead)),
        ("Messages to the lead", str(view.to_lead)),
        ("Internal notes", str(view.notes)),
        ("Conversations", str(view.conversations)),
        ("First contact", _when(view.first_contact)),
        ("Last contact", _when(view.last_contact)),
    ]
    blocks: list[Block] = [
        person,
        _heading("Contact"),
        _fields(contact),
        _heading("Campaign"),
        _fields(campaigns),
        _heading("Numbers, across the conversations you can see"),
        _fields(numbers, escaped=True),
        _heading("Other conversations"),
        *(
            {"type": "section", "text": {"type": "mrkdwn", "text": line}}
            for line in _others(view, workspace_url)
        ),
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Edit lead"},
                    "action_id": ids.LEAD_MODAL_EDIT,
                    "value": str(conversation.id),
                }
            ],
        },
    ]
    return {
        "type": "modal",
        "callback_id": ids.LEAD_MODAL,
        "private_metadata": str(conversation.id),
        "title": {"type": "plain_text", "text": "Lead"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": blocks,
    }


_FIELD_LABELS = {
    "name": "Name",
    "company": "Company",
    "title": "Title",
    "email": "Email",
    "phone": "Phone",
    "campaign": "Campaign",
}
_FIELD_HINTS = {
    "phone": "With the country code, e.g. +44 20 7946 0958.",
    "campaign": "By name: a new name creates the campaign. Changing it does not move this thread: a "
    "conversation stays in the Slack channel it was first posted to.",
}


def build_edit_lead_modal(conversation: Conversation) -> View:
    """Edit lead: the lead's name, company, title, email, phone and the conversation's campaign.

    Every field starts with what is known now; an emptied field is cleared on save.
    """
    lead = conversation.lead
    current = {
        "name": lead.name,
        "company": lead.company,
        "title": lead.title,
        "email": lead.email,
        "phone": lead.phone,
        "campaign": _name(conversation.campaign),
    }
    blocks: list[Block] = [_about(conversation)]
    for field in ids.LEAD_FIELDS:
        element: Block = {
            "type": "plain_text_input",
            "action_id": ids.LEAD_FIELD_ACTION,
            "max_length": LEAD_LIMITS[field],
        }
        value = (current[field] or "").strip()
        if value:
            element["initial_value"] = value[: LEAD_LIMITS[field]]
        block: Block = {
            "type": "input",
            "block_id": field,
            "optional": True,
            "label": {"type": "plain_text", "text": _FIELD_LABELS[field]},
            "element": element,
        }
        if field in _FIELD_HINTS:
            block["hint"] = {"type": "plain_text", "text": _FIELD_HINTS[field]}
        blocks.append(block)
    return {
        "type": "modal",
        "callback_id": ids.LEAD_EDIT_MODAL,
        "private_metadata": str(conversation.id),
        "title": {"type": "plain_text", "text": "Edit lead"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def parse_lead_edit(view_state_values: dict[str, Any]) -> LeadEdit:
    """What an Edit lead submission asks for (`view["state"]["values"]`); a field left out or emptied
    is None. Raises ValueError when the state is not shaped as the modal built it."""
    typed: dict[str, str | None] = {}
    for field in ids.LEAD_FIELDS:
        value = view_state_values.get(field, {}).get(ids.LEAD_FIELD_ACTION, {}).get("value")
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{field}: the value is not text")
        typed[field] = value
    return LeadEdit(**typed)


def _person(conversation: Conversation) -> str:
    lead = conversation.lead
    lines = [f"*{escape_clipped(lead_display_name(conversation), NAME_LIMIT)}*"]
    about = ", ".join(escape_clipped(part, FIELD_LIMIT) for part in (lead.title, lead.company) if part)
    if about:
        lines.append(about)
    return "\n".join(lines)


def _heading(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def _fields(rows: list[tuple[str, str | None]], *, escaped: bool = False) -> Block:
    # "—" rather than a missing row: "no email known" is worth saying.
    def shown(value: str | None) -> str:
        if not value:
            return "—"
        return value if escaped else escape_clipped(value, FIELD_LIMIT)

    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*{label}*\n{shown(value)}"} for label, value in rows],
    }


def _others(view: LeadView, workspace_url: str | None) -> list[str]:
    """One line per other conversation (each its own section: a long link never overflows another)."""
    lines = []
    for other in view.others:
        link = thread_link(workspace_url, other.slack_channel, other.slack_thread_ts)
        where = f"<{link}|Open the thread>" if link else f"in <#{other.slack_channel}>"
        lines.append(
            f"• {channel_icon(other.channel)} {channel_name(other.channel)} · {STATUS_WORDS[other.status]}"
            f" · last activity {_when(other.last_activity_at)} · {where}"
        )
    if view.more_others:
        lines.append(f"…and {view.more_others} more")
    if view.hidden:
        lines.append(f"{view.hidden} more in channels you are not in")
    return lines or ["None: this is the lead's only conversation."]


def _name(campaign: Campaign | None) -> str | None:
    return campaign.name if campaign is not None else None


def _when(at: datetime | None) -> str | None:
    if at is None:
        return None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


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
