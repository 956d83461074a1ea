"""Socket Mode: with SLACK_APP_TOKEN set, Slack's events arrive over the WebSocket instead of HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import APP_TOKEN, CHANNEL, AppProcess, message_event
from tests.e2e.test_whatsapp_slack import card_of, lead_writes, thread
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn


@pytest.fixture
def socket_app(app_env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    process = AppProcess(env={**app_env, "SLACK_APP_TOKEN": APP_TOKEN}, log_path=tmp_path / "socket.log")
    process.start()
    yield process
    process.stop()
    assert APP_TOKEN not in process.logs()


def test_a_reply_over_socket_mode_is_acked_and_sent_once(
    socket_app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    slack.wait_for(lambda: slack.socket_connected)
    lead_writes(socket_app, "Over the socket?", message_id="wamid.sock")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    card_ts = card_of(slack)["ts"]
    ts = slack.post_as_user(CHANNEL, "U0ANA", "Yes, over the socket", thread_ts=card_ts)
    event = {
        "team_id": "T0TEST",
        "api_app_id": "A0THREADLINE",
        "type": "event_callback",
        "event_id": "Ev0SOCKET",
        "event_time": 1700000000,
        "event": message_event(user="U0ANA", text="Yes, over the socket", ts=ts, thread_ts=card_ts),
    }

    envelope = slack.socket_send("events_api", event)
    slack.wait_for(lambda: envelope in slack.socket_acks)
    graph.wait_for(lambda: len(graph.sent) == 1)
    assert graph.sent[0].body["text"]["body"] == "Yes, over the socket"

    again = slack.socket_send("events_api", event)  # Slack redelivers when an ack is late
    slack.wait_for(lambda: again in slack.socket_acks)
    slack.wait_for(lambda: "white_check_mark" in slack.reactions(CHANNEL, ts))
    assert len(graph.sent) == 1


def test_a_refused_app_token_is_one_line_at_start_and_a_fail_in_check(
    app_env: dict[str, str], slack: SlackStandIn, tmp_path: Path
):
    from tests.e2e.test_edges import run_cli

    env = {
        **app_env,
        "SLACK_APP_TOKEN": "xapp-1-not-the-apps-token",
        "DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}",
    }
    env.pop("REDIS_URL", None)
    started = run_cli("run", env=env, cwd=tmp_path)
    assert started.returncode == 2 and "Traceback" not in started.stderr + started.stdout
    last = started.stderr.strip().splitlines()[-1]
    assert "SLACK_APP_TOKEN" in last and "connections:write" in last and "xapp-1-not" not in last

    checked = run_cli("check", env=env, cwd=tmp_path)
    transport = next(line for line in checked.stdout.splitlines() if "slack transport" in line)
    assert checked.returncode == 1 and "FAIL" in transport and "SLACK_APP_TOKEN" in transport
    good = run_cli("check", env={**env, "SLACK_APP_TOKEN": APP_TOKEN}, cwd=tmp_path)
    assert "app-level token is accepted" in good.stdout
    slack.violations.clear()  # the wrong token was ours on purpose: Slack refusing it is the point
