"""The sandbox lead: a team tries Threadline with nothing but the Slack app, through the real endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.models import Message
from tests.conftest import ROOT
from tests.e2e.harness import CHANNEL, SIGNING_SECRET, AppProcess, free_port, message_event
from tests.standins.slack_api import SlackStandIn


def simulate(app: AppProcess, lead: str, text: str, *, secret: str = SIGNING_SECRET, port: int | None = None):  # type: ignore[no-untyped-def]
    env = {**app.env, "PORT": str(port or app.port), "SLACK_SIGNING_SECRET": secret, "PYTHONPATH": str(ROOT)}
    env["THREADLINE_LOG_LEVEL"] = "INFO"  # as a teammate runs it (the app's DEBUG lets libraries speak)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "simulate", lead, text],
        env=env,
        cwd=app.env.get("THREADLINE_TEST_CWD"),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_simulate_then_reply_is_a_whole_conversation(app: AppProcess, slack: SlackStandIn):
    done = simulate(app, "Jane Doe <Jane@Example.com>", "Hi! Do you ship to Lisbon?")
    assert done.returncode == 0, done.stderr
    assert "Jane Doe <jane@example.com> wrote" in done.stdout

    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1)
    card = slack.messages(CHANNEL)[0]
    slack.wait_for(lambda: len(slack.replies(CHANNEL, card["ts"])) == 1)
    shown = card["text"] + json.dumps(card.get("blocks"))
    assert "Jane Doe" in shown and "Sandbox" in shown and "Open" in shown
    entry = slack.replies(CHANNEL, card["ts"])[0]
    assert "Do you ship to Lisbon?" in entry["text"] + json.dumps(entry.get("blocks"))

    ts = slack.post_as_user(CHANNEL, "U0ANA", "Yes, in 3 days!", thread_ts=card["ts"])
    assert (
        app.slack_event(
            message_event(user="U0ANA", text="Yes, in 3 days!", ts=ts, thread_ts=card["ts"])
        ).status_code
        == 200
    )

    slack.wait_for(lambda: "inbox_tray" in slack.reactions(CHANNEL, ts))  # 📥 delivered
    assert "[sandbox] to jane@example.com: Yes, in 3 days!" in app.logs()
    with app.database() as db, db.sessions() as session:
        reply = session.query(Message).filter_by(slack_ts=ts).one()
    assert reply.delivery_status.value == "delivered"

    again = simulate(app, "Jane Doe <jane@example.com>", "Great, thanks")  # same lead: same thread
    assert again.returncode == 0, again.stderr
    slack.wait_for(lambda: len(slack.replies(CHANNEL, card["ts"])) == 3)
    assert len(slack.messages(CHANNEL)) == 1


def test_simulate_says_in_one_line_what_is_wrong(app: AppProcess, slack: SlackStandIn, tmp_path: Path):
    forged = simulate(app, "Mallory <m@example.com>", "hi", secret="not-the-servers-secret")
    nobody = simulate(app, "Jane <jane@example.com>", "hi", port=free_port())
    unclear = simulate(app, "just a name", "hi")
    for result, words in (
        (forged, "refused the signature"),
        (nobody, "nothing answers"),
        (unclear, "Name <email or phone>"),
    ):
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert slack.calls_to("chat.postMessage") == []
