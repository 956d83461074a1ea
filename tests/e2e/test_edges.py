"""Bad input gets a clear answer and changes nothing; the operator's commands say what is wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from core.models import Message, ProcessedEvent
from tests.conftest import ROOT
from tests.e2e.harness import CHANNEL, PHONE_NUMBER_ID, AppProcess, message_event
from tests.e2e.test_whatsapp_slack import card_of, lead_writes, thread
from tests.standins import meta_webhooks as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

RUNTIMES = ("embedded-sqlite",)  # one runtime is enough here: see tests/e2e/conftest.py


def test_badly_signed_or_replayed_slack_requests_are_refused(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(app, "hi", message_id="wamid.sig")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    card_ts = card_of(slack)["ts"]
    ts = slack.post_as_user(CHANNEL, "U0ANA", "send me", thread_ts=card_ts)
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0TEST",
            "event_id": "Ev0SIG",
            "event": message_event(user="U0ANA", text="send me", ts=ts, thread_ts=card_ts),
        }
    ).encode()

    forged = app.signed_slack_post(body, "application/json", secret="not-the-signing-secret")
    replayed = app.signed_slack_post(body, "application/json", timestamp=int(time.time()) - 600)
    unsigned = httpx.post(
        f"{app.url}/slack/events", content=body, headers={"Content-Type": "application/json"}
    )

    assert (forged.status_code, replayed.status_code, unsigned.status_code) == (401, 401, 401)
    assert app.count(ProcessedEvent) == 0 and app.count(Message) == 1 and graph.calls == []


def test_oversized_and_malformed_webhooks_change_nothing(app: AppProcess, slack: SlackStandIn):
    huge = json.dumps({"object": "whatsapp_business_account", "pad": "x" * 2_000_000}).encode()
    assert (
        app.post_whatsapp_raw(huge, signature=meta.sign("whatsapp-app-secret-for-tests", huge)).status_code
        == 413
    )
    odd = json.dumps({"object": "page", "entry": []}).encode()
    assert (
        app.post_whatsapp_raw(odd, signature=meta.sign("whatsapp-app-secret-for-tests", odd)).status_code
        == 400
    )
    assert app.count(Message) == 0 and slack.calls_to("chat.postMessage") == []


def test_unknown_slash_command_text_gets_help(app: AppProcess):
    response = app.slack_command("frobnicate now", user_id="U0ANA")
    assert response.status_code == 200
    answer = response.json()
    assert (
        answer["response_type"] == "ephemeral"
        and "frobnicate" in answer["text"]
        and "/leads help" in answer["text"]
    )


def test_health_and_metrics(app: AppProcess, slack: SlackStandIn):
    assert httpx.get(f"{app.url}/healthz").json() == {"ok": True}
    lead_writes(app, "count me", message_id="wamid.metrics")
    assert app.post_whatsapp_raw(b"{}", signature="sha256=00").status_code == 401
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1)  # processed: its card is up
    metrics = httpx.get(f"{app.url}/metrics")
    assert metrics.status_code == 200
    assert 'threadline_webhooks_accepted_total{source="whatsapp"} 1.0' in metrics.text
    assert 'threadline_messages_stored{channel="whatsapp",direction="inbound"} 1.0' in metrics.text
    assert 'threadline_inbox_deliveries{status="parked"} 0.0' in metrics.text
    assert 'threadline_webhook_rejected_total{provider="whatsapp",reason="signature"} 1.0' in metrics.text


def test_an_unconfigured_channel_answers_404(tmp_path: Path, slack: SlackStandIn, app_env: dict[str, str]):
    env = {k: v for k, v in app_env.items() if not k.startswith("WHATSAPP_")}
    process = AppProcess(env=env, log_path=tmp_path / "no-whatsapp.log")
    process.start()
    try:
        payload = meta.text_message(wa_id="1555", name="x", text="hi", phone_number_id=PHONE_NUMBER_ID)
        assert process.whatsapp(payload).status_code == 404
    finally:
        process.stop()


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}


def test_run_without_slack_credentials_stops_with_one_clear_line(tmp_path: Path):
    result = run_cli("run", env=base_env(), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SLACK_BOT_TOKEN" in lines[0] and "SLACK_CHANNEL" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_an_invalid_setting_is_named(tmp_path: Path):
    (tmp_path / ".env").write_text("PORT=eighty\nSLACK_BOT_TOKEN=xoxb-1\n")
    result = run_cli("run", env=base_env(), cwd=tmp_path)
    assert result.returncode == 2 and "PORT" in result.stderr and "Traceback" not in result.stderr


def test_check_reports_what_is_configured_reachable_and_missing(
    tmp_path: Path, slack: SlackStandIn, app_env: dict[str, str]
):
    env = {**app_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'check.db'}"}
    env.pop("REDIS_URL", None)
    migrated = run_cli("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    result = run_cli("check", env=env, cwd=tmp_path)
    out = result.stdout
    assert "signed in as threadline" in out and "#leads" in out and "the app is a member" in out
    assert "AI agent" in out and "OPENAI_API_KEY is not set" in out
    assert "xoxb-" not in out and result.returncode == 0, out

    slack.add_channel(CHANNEL, "leads", bot_is_member=False)
    result = run_cli("check", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "/invite" in result.stdout


SLACK_ONLY = {
    "SLACK_BOT_TOKEN": "xoxb-test-0000-threadline",
    "SLACK_SIGNING_SECRET": "slack-signing-secret-for-tests",
    "SLACK_CHANNEL": "C0LEADS",
    "THREADLINE_ENV_FILE": "",
}


def test_every_command_says_what_it_does(tmp_path: Path):
    from app.cli import COMMANDS

    top = run_cli("--help", env=base_env(), cwd=tmp_path)
    assert top.returncode == 0 and all(name in top.stdout for name in COMMANDS)
    for name, (short, _long) in COMMANDS.items():
        result = run_cli(name, "--help", env=base_env(), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        # More than argparse's lone "-h": what it does, and where settings come from.
        assert short.split()[0] in result.stdout and "docs/configuration.md" in result.stdout, result.stdout


def test_an_unreachable_database_is_one_line_naming_it_as_typed(tmp_path: Path):
    env = {**base_env(), **SLACK_ONLY, "DATABASE_URL": "postgresql://postgres:hunter2@127.0.0.1:1/threadline"}
    result = run_cli("run", env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr
    assert "postgresql://postgres:***@127.0.0.1:1/threadline" in lines[0] and "hunter2" not in lines[0]


def test_a_taken_port_is_one_line(tmp_path: Path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **base_env(),
            **SLACK_ONLY,
            "DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}",
            "PORT": str(port),
        }
        result = run_cli("run", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("threadline: ") and f"port {port}" in last and "already in use" in last


def test_a_start_says_what_it_did_and_nothing_else(tmp_path: Path, slack: SlackStandIn):
    env = {
        **base_env(),
        **SLACK_ONLY,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'quiet.db'}",
        "SLACK_API_URL": slack.base_url,
    }
    process = AppProcess(env=env, log_path=tmp_path / "quiet.log")
    process.start()
    process.stop()
    logs = process.logs()
    assert "alembic" not in logs and "will be unused" not in logs and "WARNING" not in logs, logs
    assert "Threadline listening on" in logs and "lead channels on: sandbox" in logs


def test_check_says_what_is_half_configured_and_shows_urls_as_typed(
    tmp_path: Path, slack: SlackStandIn, app_env: dict[str, str]
):
    env = {**app_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'check.db'}"}
    env.pop("REDIS_URL", None)
    env.pop("WHATSAPP_VERIFY_TOKEN")
    result = run_cli("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    whatsapp = next(line for line in result.stdout.splitlines() if "whatsapp" in line)
    assert "FAIL" in whatsapp and "WHATSAPP_VERIFY_TOKEN" in whatsapp
    database = next(line for line in result.stdout.splitlines() if "database" in line)
    assert f"sqlite:///{tmp_path / 'check.db'}" in database and "run `threadline migrate`" in database
    assert "psycopg" not in result.stdout and "Traceback" not in result.stdout + result.stderr

    env.pop("SLACK_BOT_TOKEN")
    result = run_cli("check", env=env, cwd=tmp_path)
    slack_line = next(line for line in result.stdout.splitlines() if "] slack " in line)
    assert "SLACK_BOT_TOKEN" in slack_line and "'Set up Slack'" in slack_line
    assert "### Set up Slack" in (ROOT / "README.md").read_text()  # the section it names exists


def test_check_says_why_a_provider_is_unreachable(tmp_path: Path, app_env: dict[str, str]):
    from tests.e2e.harness import free_port

    nowhere = f"http://127.0.0.1:{free_port()}"
    env = {
        **app_env,
        "SLACK_API_URL": nowhere + "/api/",
        "WHATSAPP_API_URL": nowhere,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
    }
    env.pop("REDIS_URL", None)
    result = run_cli("check", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    slack_line = next(line for line in result.stdout.splitlines() if "] slack " in line)
    whatsapp = next(line for line in result.stdout.splitlines() if "] whatsapp " in line)
    assert "unreachable" in slack_line and "onnect" in slack_line  # the reason, not just a class name
    assert "unreachable" in whatsapp and "onnect" in whatsapp
