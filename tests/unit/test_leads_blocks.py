"""The `/leads` list and stats as Block Kit: pure builders, checked as Slack checks a message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.blocks import ids
from bot.blocks.labels import thread_link
from bot.blocks.leads import build_leads_list, build_stats, duration, page_value
from bot.leads_grammar import MAX_TEXT
from core.models import AIMode, Status
from core.queries.search import PAGE_SIZE, LeadPage, LeadRow
from core.queries.stats import Stats
from tests.standins.slack_api import MESSAGE_BLOCKS, SlackApiFailure, _check_blocks

AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
HOSTILE = "<!channel> <@U0BOSS> <https://evil.example|your bank> & " + "N" * 10_000


def row(number: int, **fields: Any) -> LeadRow:
    values: dict[str, Any] = {
        "conversation_id": number,
        "name": f"Lead {number}",
        "phone": None,
        "email": None,
        "company": "Acme",
        "channel": "whatsapp",
        "slack_channel": "C0LEADS",
        "slack_thread_ts": f"1700000000.{number:06d}",
        "status": Status.OPEN,
        "ai_mode": AIMode.ACTIVE,
        "unread": 2,
        "last_activity_at": AT,
        "preview": "Is there a discount?",
        "preview_from_lead": True,
    }
    return LeadRow(**{**values, **fields})


def valid(blocks: list[dict[str, Any]]) -> None:
    try:
        _check_blocks("/leads", blocks, MESSAGE_BLOCKS)
    except SlackApiFailure as failure:
        pytest.fail(failure.violation or failure.error)


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


def test_a_line_says_everything_a_rep_scans_for():
    text, blocks = build_leads_list(LeadPage([row(1)], 0, 1), command_text="tag:vip", empty="none")
    valid(blocks)
    line = blocks[1]["text"]["text"]
    assert text == "1–1 of 1 conversation"
    assert "*<https://slack.com/archives/C0LEADS/p1700000000000001|Lead 1>*" in line
    assert "Acme" in line and "WhatsApp" in line and ":speech_balloon:" in line
    assert "Open" in line and "AI active" in line and "*2 unread*" in line
    assert f"<!date^{int(AT.timestamp())}^{{date_short_pretty}} {{time}}|2026-11-25 09:30 UTC>" in line
    assert "> _Lead:_ Is there a discount?" in line
    assert "`/leads tag:vip`" in blocks[0]["text"]["text"] and buttons(blocks) == {}


def test_hostile_rows_stay_inert_and_inside_slacks_limits():
    rows = [
        row(n, name=HOSTILE, company=HOSTILE, preview=HOSTILE + "\n" * 50, ai_mode=AIMode.PAUSED)
        for n in range(PAGE_SIZE)
    ]
    command = "\x01" * MAX_TEXT  # the worst case for the buttons' JSON value
    _, blocks = build_leads_list(LeadPage(rows, PAGE_SIZE, 500), command_text=command, empty="none")
    valid(blocks)
    shown = json.dumps(blocks)
    for raw in ("<!channel>", "<@U0BOSS>", "<https://evil"):
        assert raw not in shown
    assert "&lt;!channel&gt;" in shown
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert all(len(button["value"]) <= 2000 for button in buttons(blocks).values())


def test_previous_and_next_carry_the_query_and_offset():
    rows = [row(n) for n in range(PAGE_SIZE)]
    _, middle = build_leads_list(LeadPage(rows, PAGE_SIZE, 25), command_text="mine pricing", empty="none")
    pages = buttons(middle)
    assert json.loads(pages[ids.LEADS_PREVIOUS]["value"]) == {"q": "mine pricing", "o": 0}
    assert json.loads(pages[ids.LEADS_NEXT]["value"]) == {"q": "mine pricing", "o": 20}

    text, last = build_leads_list(LeadPage(rows[:5], 20, 25), command_text="", empty="none")
    assert text == "21–25 of 25 conversations"
    assert set(buttons(last)) == {ids.LEADS_PREVIOUS}
    assert json.loads(buttons(last)[ids.LEADS_PREVIOUS]["value"])["o"] == 10
    assert page_value("a", 3) == '{"q":"a","o":3}'


def test_nothing_found_says_so_and_how_to_get_help():
    text, blocks = build_leads_list(LeadPage([], 0, 0), command_text="zzz", empty="No conversations match.")
    valid(blocks)
    assert "No conversations match." in text and "`/leads zzz`" in text and "/leads help" in text
    text, _ = build_leads_list(LeadPage([], 30, 12), command_text="", empty="x")
    assert "No more conversations." in text


def test_a_line_without_a_thread_has_no_link_and_a_nameless_lead_shows_their_phone():
    _, blocks = build_leads_list(
        LeadPage([row(1, name=None, phone="+15550001", slack_thread_ts=None)], 0, 1),
        command_text="",
        empty="",
    )
    assert "*+15550001*" in blocks[1]["text"]["text"] and "archives" not in blocks[1]["text"]["text"]
    assert (
        thread_link("C0LEADS", "1700000000.000100") == "https://slack.com/archives/C0LEADS/p1700000000000100"
    )
    assert thread_link("C0LEADS|x", "1700000000.000100") is None
    assert thread_link("C0LEADS", "1700000000.0001>") is None


def test_stats_in_words():
    stats = Stats(
        conversations=12,
        first_response_median_seconds=95,
        first_response_mean_seconds=4000,
        resolved=3,
        resolution_rate=0.25,
        ai_messages=30,
        member_messages=10,
        ai_share=0.75,
        csat_count=4,
        csat_average=4.5,
    )
    text, blocks = build_stats(stats, period="week", mine=False)
    valid(blocks)
    shown = json.dumps(blocks)
    assert text == "The team's numbers, last 7 days"
    assert "median 1 min, mean 1 h 6 min" in shown and "3 (25% of active)" in shown
    assert "30 AI / 10 team messages (75% by AI)" in shown and "4.5 / 5 from 4 ratings" in shown

    empty = Stats(0, None, None, 0, None, 0, 0, None, 0, None)
    _, blocks = build_stats(empty, period="today", mine=True)
    shown = json.dumps(blocks)
    assert "Your numbers, today" in shown and "no first responses yet" in shown
    assert "nothing sent yet" in shown and "no ratings yet" in shown


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "0 s"),
        (59.4, "59 s"),
        (60, "1 min"),
        (3600, "1 h"),
        (3660, "1 h 1 min"),
        (90000, "1 d 1 h"),
        (86400, "1 d"),
    ],
)
def test_durations_as_people_say_them(seconds: float, said: str):
    assert duration(seconds) == said
