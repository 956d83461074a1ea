"""App Home and the notifications to teammates: valid Block Kit whatever the data, lead text inert."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.blocks import ids
from bot.blocks.home import build_home, build_home_for_outsider, not_taken_notice, thread_link
from bot.blocks.notifications import build_assignment_dm, build_message_dm, build_sla_reminder
from core.actions.members import Notifications
from core.models import AIMode, Conversation, Lead, Status
from core.queries.home import HomeRow, HomeSummary
from core.queries.stats import Stats
from tests.standins.block_kit import block_problems, view_problems

HOSTILE = "<!channel> & <@U999>"
HUGE = ("<!here> " * 1250)[:10_000]  # a 10,000-character lead name that tries to ping everyone
AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
WORKSPACE = "https://acme.slack.com/"
WEEK = Stats(
    conversations=12,
    first_response_median_seconds=240.0,
    first_response_mean_seconds=7200.0,
    resolved=3,
    resolution_rate=0.25,
    ai_messages=1,
    member_messages=3,
    ai_share=0.25,
    csat_count=2,
    csat_average=4.5,
)


def row(n: int = 1, **overrides: Any) -> HomeRow:
    values: dict[str, Any] = {
        "conversation_id": n,
        "lead": f"Lead {n}",
        "company": "Acme",
        "channel": "whatsapp",
        "status": Status.OPEN,
        "ai_mode": AIMode.MANUAL,
        "unread": 0,
        "last_activity_at": AT,
        "slack_channel": "C0LEADS",
        "slack_thread_ts": f"1700000000.{n:06d}",
    }
    return HomeRow(**{**values, **overrides})


def summary(**overrides: Any) -> HomeSummary:
    values: dict[str, Any] = {
        "mine": [],
        "unassigned": [],
        "mine_open": 0,
        "unassigned_open": 0,
        "week": WEEK,
        "notifications": Notifications(on_assign=True, on_message=True),
    }
    return HomeSummary(**{**values, **overrides})


def valid_view(view: dict[str, Any]) -> list[dict[str, Any]]:
    assert 0 < len(view["blocks"]) <= 100
    parsed = [Block.parse(block) for block in view["blocks"]]
    assert all(block is not None and type(block) is not Block for block in parsed), "unknown block type"
    View(**view).to_dict()  # raises on any limit slack_sdk knows (header 150, section 3000, fields…)
    assert [*block_problems(view["blocks"]), *view_problems(view)] == []  # what slack_sdk lets through
    return list(view["blocks"])


def rendered(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False)


def take_buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        b["accessory"]["value"] for b in blocks if b.get("accessory", {}).get("action_id") == ids.HOME_TAKE
    ]


def test_home_shows_mine_the_queue_my_week_and_my_settings():
    view = build_home(
        summary(
            mine=[row(1, unread=3, lead=HOSTILE)],
            unassigned=[row(2), row(3)],
            mine_open=1,
            unassigned_open=2,
        ),
        workspace_url=WORKSPACE,
    )
    blocks = valid_view(view)
    text = rendered(view)
    assert "Your open conversations (1)" in text and "*3 unread*" in text
    assert "Unassigned (2)" in text and take_buttons(blocks) == ["2", "3"]
    assert "Your last 7 days" in text and "4 min median" in text and "2.0 h mean" in text
    assert "3 (25%)" in text and "4.5 / 5 (2)" in text
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; &lt;@U999&gt;" in text
    assert "<https://acme.slack.com/archives/C0LEADS/p1700000000000001|" in text
    checkboxes = next(b for b in blocks if b["type"] == "actions")["elements"][0]
    assert checkboxes["action_id"] == ids.HOME_NOTIFICATIONS
    assert [o["value"] for o in checkboxes["initial_options"]] == [
        ids.NOTIFY_ON_ASSIGN,
        ids.NOTIFY_ON_MESSAGE,
    ]


def test_a_rep_with_500_open_conversations_and_10000_character_names_gets_a_valid_home():
    many = [row(n, lead=HUGE, company=HUGE, unread=n % 3) for n in range(1, 501)]
    view = build_home(
        summary(mine=many, unassigned=many, mine_open=500, unassigned_open=500),
        workspace_url=WORKSPACE,
        notice=not_taken_notice(HUGE, taken_by="U0BOB"),
    )
    blocks = valid_view(view)
    text = rendered(view)
    assert "…and 480 more — `/leads mine`" in text and "…and 480 more — `/leads unassigned`" in text
    assert len(take_buttons(blocks)) == 20
    assert "<!here>" not in text


def test_only_the_settings_that_are_on_are_ticked():
    off = valid_view(build_home(summary(notifications=Notifications(False, False)), workspace_url=None))
    checkboxes = next(b for b in off if b["type"] == "actions")["elements"][0]
    assert "initial_options" not in checkboxes  # Slack refuses an empty list
    half = valid_view(build_home(summary(notifications=Notifications(False, True)), workspace_url=None))
    checkboxes = next(b for b in half if b["type"] == "actions")["elements"][0]
    assert [o["value"] for o in checkboxes["initial_options"]] == [ids.NOTIFY_ON_MESSAGE]


def test_an_empty_home_says_so_and_a_newcomer_has_no_numbers_yet():
    text = rendered(build_home(summary(week=None), workspace_url=None))
    assert "Nothing assigned to you." in text and "Nobody is waiting." in text
    assert "No numbers yet" in text


def test_without_the_workspace_address_rows_have_no_link_but_still_say_where():
    text = rendered(build_home(summary(mine=[row(1)], mine_open=1), workspace_url=None))
    assert "archives" not in text and "in <#C0LEADS>" in text
    assert thread_link(None, "C0LEADS", "1.2") is None and thread_link(WORKSPACE, "C0LEADS", None) is None


def test_outsiders_see_only_why():
    view = build_home_for_outsider("Guests can't act on lead conversations: ask a full member.")
    assert "Guests can't" in rendered(view) and len(valid_view(view)) == 1


# --- notifications (bot/blocks/notifications.py) ---------------------------------------------------------


def conversation(name: str = "Jane Doe", company: str | None = "Acme") -> Conversation:
    return Conversation(id=7, channel="whatsapp", lead=Lead(name=name, company=company), tags=[])


def valid_message(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= 50
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None and type(parsed) is not Block
        parsed.to_dict()
    assert list(block_problems(blocks)) == []


def test_the_message_dm_quotes_the_lead_inertly_and_links_the_thread():
    text, blocks = build_message_dm(
        conversation(HOSTILE), "hi <!channel> & <https://evil|bank>", 1, "https://x/p1"
    )
    valid_message(blocks)
    shown = json.dumps(blocks)
    assert "<!channel>" not in shown and "<https://evil" not in shown and "&lt;!channel&gt;" in text
    assert "sent a message on WhatsApp" in text and "<https://x/p1|Open the conversation>" in shown
    assert "Home tab" in shown


def test_the_message_dm_counts_a_batch_and_fits_any_length():
    text, blocks = build_message_dm(conversation(HUGE, HUGE), HUGE * 3, 4, None)
    valid_message(blocks)
    assert "sent 4 messages" in text and "<!here>" not in json.dumps(blocks) and len(text) <= 3000


def test_the_assignment_dm_fits_a_10000_character_name():
    text, blocks = build_assignment_dm(conversation(HUGE, HUGE), "https://x/p1")
    valid_message(blocks)
    assert "<!here>" not in json.dumps(blocks) and "You were assigned" in text


def test_the_sla_reminder_mentions_the_assignee_or_the_channel():
    since = AT - timedelta(hours=26)
    assigned = build_sla_reminder(conversation(HOSTILE), "U0ANA", since, AT)
    assert assigned.startswith(":alarm_clock: <@U0ANA> ") and "26 hours" in assigned
    assert "<!channel>" not in assigned and "&lt;!channel&gt;" in assigned
    unassigned = build_sla_reminder(conversation(HUGE), None, AT - timedelta(seconds=5), AT)
    assert unassigned.count("<!here>") == 1 and "1 minute " in unassigned and len(unassigned) <= 3000
