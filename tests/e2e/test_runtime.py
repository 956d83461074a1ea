"""The runtime under real traffic, through the real endpoints, on both runtimes: a chatty lead's backlog
holds nobody else up, a Slack outage loses nothing, poison webhooks are kept and parked, not refused."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from core.models import Inbox, InboxStatus, Message
from tests.e2e.harness import CHANNEL, PHONE_NUMBER_ID, WHATSAPP_SECRET, AppProcess, message_event
from tests.e2e.test_edges import run_cli
from tests.e2e.test_whatsapp_slack import lead_writes
from tests.standins import meta_webhooks as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

BACKLOG = 300


def card_for(slack: SlackStandIn, name: str, timeout: float = 30) -> str:
    slack.wait_for(lambda: any(name in m["text"] for m in slack.messages(CHANNEL)), timeout=timeout)
    return next(m["ts"] for m in slack.messages(CHANNEL) if name in m["text"])


def entries(slack: SlackStandIn, card_ts: str) -> list[str]:
    """What each thread entry says (its text is "Sender: what they wrote")."""
    return [m["text"].split(": ", 1)[-1] for m in slack.replies(CHANNEL, card_ts)]


def many_messages(wa_id: str, name: str, count: int) -> dict[str, Any]:
    """One webhook carrying `count` messages from one lead, as Meta batches them after an outage."""
    payload = meta.text_message(
        wa_id=wa_id, name=name, text="m0", message_id="wamid.b0", phone_number_id=PHONE_NUMBER_ID
    )
    value = payload["entry"][0]["changes"][0]["value"]
    first = value["messages"][0]
    value["messages"] = [
        {**first, "id": f"wamid.b{n}", "text": {"body": f"backlog {n}"}} for n in range(count)
    ]
    return payload


def rep_replies(app: AppProcess, slack: SlackStandIn, card_ts: str, text: str) -> None:
    ts = slack.post_as_user(CHANNEL, "U0ANA", text, thread_ts=card_ts)
    assert (
        app.slack_event(message_event(user="U0ANA", text=text, ts=ts, thread_ts=card_ts)).status_code == 200
    )


def test_a_chatty_leads_backlog_holds_up_no_other_lead(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(app, "hi, Carla here", message_id="wamid.c1", wa_id="15550000003", name="Carla")
    carla = card_for(slack, "Carla")
    slack.wait_for(lambda: len(entries(slack, carla)) == 1)

    assert app.whatsapp(many_messages("15550000001", "Chatty", BACKLOG)).status_code == 200
    chatty = card_for(slack, "Chatty")
    lead_writes(app, "hello, I am new", message_id="wamid.n1", wa_id="15550000002", name="Newcomer")
    rep_replies(app, slack, carla, "Reply to Carla while Chatty's backlog drains")

    newcomer = card_for(slack, "Newcomer")
    slack.wait_for(lambda: len(entries(slack, newcomer)) == 1)
    graph.wait_for(lambda: any(s.to == "15550000003" for s in graph.sent))
    drained = len(entries(slack, chatty))
    # Slack allows about one post a second per channel: had the newcomer and Carla's reply queued behind
    # the backlog, they would have come after all 300 entries.
    assert drained < BACKLOG // 10, f"{drained} backlog entries went first"
    assert entries(slack, chatty) == [f"backlog {n}" for n in range(drained)]  # and in order


def test_a_slack_outage_ends_with_every_message_in_its_thread_in_order_once(
    slack: SlackStandIn, app_env: dict[str, str], tmp_path: Path
):
    env = {**app_env, "THREADLINE_RETRY_CAP_SECONDS": "1"}  # minutes in production; the rule is the same
    app = AppProcess(env=env, log_path=tmp_path / "outage.log")
    app.start()
    try:
        lead_writes(app, "before", message_id="wamid.o0")
        card = card_for(slack, "Jane")
        slack.wait_for(lambda: entries(slack, card) == ["before"])

        slack.set_outage(True)
        for n in range(1, 6):
            lead_writes(app, f"during {n}", message_id=f"wamid.o{n}")
        # Far past the eight attempts after which mirror work used to be given up for good.
        slack.wait_for(lambda: sum(not c.ok for c in slack.calls) >= 12, timeout=60)
        slack.set_outage(False)

        expected = ["before"] + [f"during {n}" for n in range(1, 6)]
        slack.wait_for(lambda: len(entries(slack, card)) >= len(expected), timeout=60)
        assert entries(slack, card) == expected
        assert len(slack.messages(CHANNEL)) == 1  # one card, one thread
    finally:
        app.stop()
    assert "Traceback" not in app.logs()


POISON = {
    "long name": {"name": "N" * 300},
    "nul byte": {"text": "before\x00after"},
    "40-digit from": {"wa_id": "1" * 40},
    "lone surrogate": {"text": "half \ud800 a pair"},
}


def test_poison_webhooks_get_200_and_are_stored_or_parked_then_replayed(
    app: AppProcess, slack: SlackStandIn, app_env: dict[str, str], tmp_path: Path
):
    for n, (what, change) in enumerate(POISON.items()):
        payload = meta.text_message(
            wa_id=change.get("wa_id", f"1555000100{n}"),
            name=change.get("name", what),
            text=change.get("text", what),
            message_id=f"wamid.poison{n}",
            phone_number_id=PHONE_NUMBER_ID,
        )
        assert app.whatsapp(payload).status_code == 200, what
    infinite = meta.text_message(
        wa_id="15550002000", name="Inf", text="when?", message_id="wamid.inf", phone_number_id=PHONE_NUMBER_ID
    )
    infinite["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = float("inf")
    deep = b'{"object": "whatsapp_business_account", "entry": ' + b"[" * 1_000 + b"1" + b"]" * 1_000 + b"}"
    for raw in (json.dumps(infinite).encode(), deep):
        assert app.post_whatsapp_raw(raw, signature=meta.sign(WHATSAPP_SECRET, raw)).status_code == 200

    with app.database() as db:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with db.sessions() as session:
                states = list(session.scalars(select(Inbox.status).order_by(Inbox.id)))
            if len(states) == 6 and InboxStatus.NEW not in states and InboxStatus.RUNNING not in states:
                break
            time.sleep(0.05)  # polling for the inbox runner
        assert states == [InboxStatus.DONE] * 4 + [InboxStatus.PARKED] * 2
        with db.sessions() as session:
            assert len(list(session.scalars(select(Message.id)))) == 4
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 4)

    check = run_cli("check", env=app_env, cwd=tmp_path)
    assert "2 parked" in check.stdout and "replay --parked" in check.stdout
    metrics = httpx.get(f"{app.url}/metrics").text
    assert 'threadline_inbox_deliveries{status="parked"} 2.0' in metrics
    seen = f'threadline_connection_last_message_seconds{{account="{PHONE_NUMBER_ID}",channel="whatsapp"}}'
    assert seen in metrics and "last message" in check.stdout
    assert f'threadline_connection_broken{{account="{PHONE_NUMBER_ID}",channel="whatsapp"}} 0.0' in metrics

    replay = run_cli("replay", "--parked", env=app_env, cwd=tmp_path)
    assert replay.returncode == 1 and "2 parked again" in replay.stdout  # nothing fixed: kept, not lost


def test_replay_brings_a_parked_delivery_through_once_its_cause_is_gone(
    app: AppProcess, slack: SlackStandIn, app_env: dict[str, str], tmp_path: Path
):
    payload = meta.text_message(
        wa_id="15550003000",
        name="Parked",
        text="kept for later",
        message_id="wamid.p1",
        phone_number_id=PHONE_NUMBER_ID,
    )
    with app.database() as db, db.transaction() as session:  # parked by a version whose parser had a bug
        session.add(
            Inbox(
                source="whatsapp",
                dedupe_key="parked-by-an-older-version",
                body=json.dumps(payload).encode(),
                status=InboxStatus.PARKED,
                attempts=1,
                last_error="KeyError: 'profile'",
            )
        )

    replay = run_cli("replay", "--parked", env=app_env, cwd=tmp_path)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "replayed 1 deliveries: 1 processed, 0 parked again; 0 parked in all" in replay.stdout
    card = card_for(slack, "Parked")  # the server's workers mirror what the replay stored
    slack.wait_for(lambda: entries(slack, card) == ["kept for later"])


def test_a_reps_reply_is_kept_while_slack_cannot_say_who_wrote_it(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(app, "hi", message_id="wamid.r1")
    card = card_for(slack, "Jane")
    slack.wait_for(lambda: entries(slack, card) == ["hi"])
    ts = slack.post_as_user(CHANNEL, "U0ANA", "Here is our offer", thread_ts=card)
    slack.set_outage(True)  # Slack took the message, then stopped answering our lookups

    event = message_event(user="U0ANA", text="Here is our offer", ts=ts, thread_ts=card)
    assert app.slack_event(event).status_code == 200  # acknowledged: kept in the inbox
    lookups = {"users.info", "auth.test", "conversations.members"}
    slack.wait_for(lambda: any(c.method in lookups and not c.ok for c in slack.calls))
    assert graph.sent == []  # who wrote it is unknown yet: nothing goes out, nothing is refused

    slack.set_outage(False)
    graph.wait_for(lambda: len(graph.sent) == 1, timeout=40)
    assert graph.sent[0].body["text"]["body"] == "Here is our offer"
