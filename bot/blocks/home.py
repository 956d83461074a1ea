"""The App Home tab: my open conversations, the unassigned queue (each with Take it), the AI's
corrections waiting for review (when there are any), my week in numbers, my notification settings.

At most `ROWS` lines per list (a view holds 100 blocks); the rest are counted with the `/leads` words
that list them all. Lead text is escaped and clipped, so any name fits and none can ping.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.blocks import ids
from bot.blocks.card import STATUS_WORDS, ai_words
from bot.blocks.labels import channel_icon, channel_name
from bot.mrkdwn import escape, escape_clipped
from core.queries.ai_stats import ToReview
from core.queries.home import HomeRow, HomeSummary
from core.queries.stats import Stats

Block = dict[str, Any]

ROWS = 20  # lines per list
NAME_LIMIT = 150  # the lead's name, escaped
COMPANY_LIMIT = 100
TEXT_LIMIT = 3000  # a section's text
REVIEW_ROWS = 10  # corrections listed under "Knowledge to review"
REVIEW_TITLE_LIMIT = 120
HELP = "Reply in a conversation's thread to answer the lead; `/leads help` for more."
NOTIFY_OPTIONS = (
    (ids.NOTIFY_ON_ASSIGN, "DM me when a conversation is assigned to me"),
    (ids.NOTIFY_ON_MESSAGE, "DM me when a lead of mine writes"),
)


def thread_link(workspace_url: str | None, channel: str, thread_ts: str | None) -> str | None:
    """A conversation's thread, as Slack's own permalinks spell it (no API call per row)."""
    if not workspace_url or not thread_ts:
        return None
    return f"{workspace_url.rstrip('/')}/archives/{channel}/p{thread_ts.replace('.', '')}"


def _when(at: datetime) -> str:
    # Slack shows it in the reader's own time zone; the fallback is for clients that cannot.
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def _line(row: HomeRow, workspace_url: str | None) -> str:
    name = escape_clipped(row.lead, NAME_LIMIT)
    link = thread_link(workspace_url, row.slack_channel, row.slack_thread_ts)
    title = f"*<{link}|{name}>*" if link else f"*{name}*"
    company = f" ({escape_clipped(row.company, COMPANY_LIMIT)})" if row.company else ""
    icon = channel_icon(row.channel)
    state = f"{STATUS_WORDS[row.status]} · {ai_words(row.ai_mode)}"
    unread = f" · *{row.unread} unread*" if row.unread else ""
    return (
        f"{title}{company}\n{icon} {channel_name(row.channel)} · {state}{unread}"
        f" · in <#{row.slack_channel}> · last activity {_when(row.last_activity_at)}"
    )[:TEXT_LIMIT]


def _text(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:TEXT_LIMIT]}}


def _context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}


def _more(shown: int, total: int, command: str) -> list[Block]:
    if total <= shown:
        return []
    words = f"_…and {total - shown} more — `{command}`_"
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": words}]}]


def _mine(summary: HomeSummary, workspace_url: str | None) -> list[Block]:
    rows = summary.mine[:ROWS]
    lines = [_text(_line(row, workspace_url)) for row in rows] or [_text("Nothing assigned to you.")]
    header = _header(f"Your open conversations ({summary.mine_open})")
    return [header, *lines, *_more(len(rows), summary.mine_open, "/leads mine")]


def _queue(summary: HomeSummary, workspace_url: str | None) -> list[Block]:
    rows = summary.unassigned[:ROWS]
    lines = [
        {
            **_text(_line(row, workspace_url)),
            "block_id": f"home.queue.{row.conversation_id}",
            "accessory": {
                "type": "button",
                "action_id": ids.HOME_TAKE,
                "text": {"type": "plain_text", "text": "Take it"},
                "value": str(row.conversation_id),
                "style": "primary",
            },
        }
        for row in rows
    ] or [_text("Nobody is waiting.")]
    header = _header(f"Unassigned ({summary.unassigned_open})")
    return [header, *lines, *_more(len(rows), summary.unassigned_open, "/leads unassigned")]


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 90:
        return f"{value:.0f} s"
    if value < 5400:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _week(week: Stats | None) -> list[Block]:
    header = _header("Your last 7 days")
    if week is None:
        return [header, _text("No numbers yet: take a conversation to start.")]
    csat = f"{week.csat_average:.1f} / 5 ({week.csat_count})" if week.csat_average is not None else "—"
    fields = [
        f"*Conversations*\n{week.conversations}",
        f"*First response*\n{_seconds(week.first_response_median_seconds)} median, "
        f"{_seconds(week.first_response_mean_seconds)} mean",
        f"*Resolved*\n{week.resolved} ({_share(week.resolution_rate)})",
        f"*Sent by the AI*\n{_share(week.ai_share)} of {week.ai_messages + week.member_messages} replies",
        f"*Satisfaction*\n{csat}",
    ]
    return [header, {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]}]


def _settings(summary: HomeSummary) -> list[Block]:
    on = {ids.NOTIFY_ON_ASSIGN: summary.notifications.on_assign}
    on[ids.NOTIFY_ON_MESSAGE] = summary.notifications.on_message
    options = [{"text": {"type": "mrkdwn", "text": label}, "value": value} for value, label in NOTIFY_OPTIONS]
    checkboxes: Block = {"type": "checkboxes", "action_id": ids.HOME_NOTIFICATIONS, "options": options}
    chosen = [option for option, (value, _) in zip(options, NOTIFY_OPTIONS, strict=True) if on[value]]
    if chosen:  # Slack refuses an empty initial_options
        checkboxes["initial_options"] = chosen
    return [
        _header("Notifications"),
        {"type": "actions", "block_id": ids.HOME_NOTIFICATIONS_BLOCK, "elements": [checkboxes]},
    ]


def _to_review(pending: tuple[Sequence[ToReview], int], workspace_url: str | None) -> list[Block]:
    """Corrections of the AI waiting for a teammate: each links to the thread where Approve/Reject are."""
    rows, total = pending
    if not total:
        return []  # nothing to review (and no AI): Home as before
    lines = []
    for row in rows[:REVIEW_ROWS]:
        title = escape_clipped(row.title, REVIEW_TITLE_LIMIT)
        link = thread_link(workspace_url, row.slack_channel, row.slack_thread_ts)
        lines.append(f"• <{link}|{title}>" if link else f"• {title} (in <#{row.slack_channel}>)")
    said = "Approve or reject each in its thread; the AI uses a correction once it is approved."
    return [
        _header(f"Knowledge to review ({total})"),
        _text("\n".join(lines)),
        _context(said),
        *(
            [_context(f"_…and {total - len(lines)} more in the channels' threads_")]
            if total > len(lines)
            else []
        ),
        {"type": "divider"},
    ]


def build_home(
    summary: HomeSummary,
    *,
    workspace_url: str | None,
    notice: str | None = None,
    to_review: tuple[Sequence[ToReview], int] = ((), 0),
) -> Block:
    """The Home tab; `notice` (our own words, mrkdwn) answers the reader's last click on it;
    `to_review`: the AI corrections waiting for review in the reader's channels, and how many in all."""
    top = [_text(f":information_source: {notice}")] if notice else []
    divider: Block = {"type": "divider"}
    blocks = [
        *top,
        *_mine(summary, workspace_url),
        divider,
        *_queue(summary, workspace_url),
        divider,
        *_to_review(to_review, workspace_url),
        *_week(summary.week),
        divider,
        *_settings(summary),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": HELP}]},
    ]
    return {"type": "home", "blocks": blocks}


def build_home_for_outsider(reason: str) -> Block:
    """App Home for someone who may not see lead conversations: only why."""
    text = f"*Threadline* keeps the sales team's lead conversations.\n{escape(reason)}"
    return {"type": "home", "blocks": [_text(text)]}


def taken_notice(lead: str) -> str:
    return f"The conversation with *{escape_clipped(lead, NAME_LIMIT)}* is yours now."


def not_taken_notice(lead: str, *, taken_by: str | None) -> str:
    """Why Take it changed nothing: somebody was faster (`taken_by`, a Slack user id), or it closed."""
    name = escape_clipped(lead, NAME_LIMIT)
    if taken_by:
        return f"<@{taken_by}> already took the conversation with *{name}*."
    return f"The conversation with *{name}* was closed meanwhile."
