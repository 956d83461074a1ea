"""The `/leads` answer: a private list of conversations with Previous/Next, and the stats.

One section per conversation: the lead's name linking to its thread, company, channel, status, AI
mode, unread count, last activity (in the reader's own time zone, by Slack's date token) and a preview
of the last message between lead and team. Every lead-typed string is escaped and clipped, so a line
can never ping anyone and a page stays inside Slack's limits whatever the leads typed.
"""

from __future__ import annotations

import json
from typing import Any

from bot.blocks import ids
from bot.blocks.card import STATUS_WORDS
from bot.blocks.labels import channel_icon, channel_name, thread_link
from bot.mrkdwn import escape_clipped
from core.models import AIMode
from core.queries.ai_stats import AIStats
from core.queries.search import PAGE_SIZE, LeadPage, LeadRow
from core.queries.stats import Stats

Block = dict[str, Any]

NAME_LIMIT = 150
DETAIL_LIMIT = 100  # a company
PREVIEW_LIMIT = 200
QUERY_LIMIT = 200  # the command, as echoed in the header
_AI = {AIMode.ACTIVE: ":robot_face: AI active", AIMode.PAUSED: "AI paused", AIMode.MANUAL: "Manual"}


def page_value(command_text: str, offset: int) -> str:
    return json.dumps({"q": command_text, "o": offset}, ensure_ascii=False, separators=(",", ":"))


def build_leads_list(
    page: LeadPage, *, command_text: str, empty: str, page_size: int = PAGE_SIZE
) -> tuple[str, list[Block]]:
    """(fallback text, blocks); `empty` is what to say when nothing matches."""
    asked = escape_clipped(f"/leads {command_text}".strip(), QUERY_LIMIT)
    if not page.rows:
        said = empty if page.offset == 0 else "No more conversations."
        said = f"{said}\n_`{asked}`_ · `/leads help` for filters"
        return said, [_section(said)]
    first, last = page.offset + 1, page.offset + len(page.rows)
    summary = f"{first}–{last} of {page.total} conversation{'s' if page.total != 1 else ''}"
    blocks = [_section(f"*{summary}* · _`{asked}`_")]
    blocks.extend(_section(_line(row)) for row in page.rows)
    buttons = []
    if page.offset > 0:
        previous = max(page.offset - page_size, 0)
        buttons.append(_button("◀ Previous", ids.LEADS_PREVIOUS, page_value(command_text, previous)))
    if page.has_more:
        buttons.append(_button("Next ▶", ids.LEADS_NEXT, page_value(command_text, last)))
    if buttons:
        blocks.append({"type": "actions", "block_id": ids.LEADS_PAGES_BLOCK, "elements": buttons})
    return summary, blocks


def _line(row: LeadRow) -> str:
    icon, channel = channel_icon(row.channel), channel_name(row.channel)
    name = escape_clipped(_name(row), NAME_LIMIT)
    link = thread_link(row.slack_channel, row.slack_thread_ts)
    title = f"*<{link}|{name}>*" if link else f"*{name}*"
    company = f" · {escape_clipped(row.company, DETAIL_LIMIT)}" if row.company else ""
    unread = f" · *{row.unread} unread*" if row.unread else ""
    stamp = int(row.last_activity_at.timestamp())
    when = f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{row.last_activity_at:%Y-%m-%d %H:%M} UTC>"
    state = f"{STATUS_WORDS[row.status]} · {_AI[row.ai_mode]}{unread} · {when}"
    lines = [f"{icon} {title}{company} · {escape_clipped(channel, DETAIL_LIMIT)}", state]
    if row.preview:
        who = "Lead" if row.preview_from_lead else "Team"
        lines.append(f"> _{who}:_ {escape_clipped(' '.join(row.preview.split()), PREVIEW_LIMIT)}")
    return "\n".join(lines)


def _name(row: LeadRow) -> str:
    for candidate in (row.name, row.phone, row.email):
        if candidate and candidate.strip():
            return candidate.strip()
    return "Unknown lead"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _button(label: str, action_id: str, value: str) -> Block:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
    }


# --- /leads stats ----------------------------------------------------------------------------------------


def build_stats(
    stats: Stats, *, period: str, mine: bool, ai: AIStats | None = None
) -> tuple[str, list[Block]]:
    """`ai`: the AI's turns in the period (what they cost, how often it handed off), when shown."""
    whose = "Your" if mine else "The team's"
    title = f"{whose} numbers, {_PERIOD_WORDS.get(period, period)}"
    fields = [
        f"*Conversations*\n{stats.conversations}",
        f"*First response*\n{_first_response(stats)}",
        f"*Resolved*\n{stats.resolved}{_percent(stats.resolution_rate, ' of active')}",
        f"*AI vs team*\n{_ai_share(stats)}",
        f"*Satisfaction*\n{_satisfaction(stats)}",
    ]
    if ai is not None:
        fields += [f"*AI turns*\n{_ai_turns(ai)}", f"*AI speed and cost*\n{_ai_cost(ai)}"]
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": field} for field in fields]},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Conversations in the channels you are in. `/leads help` for more.",
                }
            ],
        },
    ]
    return title, blocks


_PERIOD_WORDS = {"today": "today", "week": "last 7 days", "month": "last 30 days", "all": "all time"}


def _first_response(stats: Stats) -> str:
    if stats.first_response_median_seconds is None or stats.first_response_mean_seconds is None:
        return "no first responses yet"
    median, mean = stats.first_response_median_seconds, stats.first_response_mean_seconds
    return f"median {duration(median)}, mean {duration(mean)}"


def _ai_share(stats: Stats) -> str:
    if stats.ai_share is None:
        return "nothing sent yet"
    return (
        f"{stats.ai_messages} AI / {stats.member_messages} team messages{_percent(stats.ai_share, ' by AI')}"
    )


def _ai_turns(ai: AIStats) -> str:
    if not ai.turns:
        return "no AI turns yet"
    handed_off = ai.outcomes.get("handed_off", 0)
    return f"{ai.turns}, {handed_off} handed off{_percent(ai.handoff_rate, '')}"


def _ai_cost(ai: AIStats) -> str:
    if not ai.turns:
        return "—"
    latency = "" if ai.latency_p50_ms is None else f"median {ai.latency_p50_ms / 1000:.1f} s, "
    tokens = ai.prompt_tokens + ai.completion_tokens
    return f"{latency}{tokens:,} tokens ({ai.prompt_tokens:,} in, {ai.completion_tokens:,} out)"


def _satisfaction(stats: Stats) -> str:
    if stats.csat_average is None:
        return "no ratings yet"
    return (
        f"{stats.csat_average:.1f} / 5 from {stats.csat_count} rating{'s' if stats.csat_count != 1 else ''}"
    )


def _percent(share: float | None, what: str) -> str:
    return "" if share is None else f" ({share:.0%}{what})"


def duration(seconds: float) -> str:
    """A duration as a person says it: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
