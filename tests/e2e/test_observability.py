"""What an operator sees: /metrics (the web process's and the Celery worker's), JSON log lines that
carry the conversation, and not one secret in any line at DEBUG.

The distributed test runs `threadline run` on PostgreSQL and a Redis of its own that wants a password,
with every lead channel and the AI agent on, each secret a distinctive value; traffic goes through each
channel (a WhatsApp, a LinkedIn and an email lead write; the agent answers each over its channel; a
teammate clicks Take over and replies), then the metrics an operator would alert on are read from both
processes and checked against what the stand-ins saw. The embedded test checks that one endpoint
shows everything when the worker runs inside the web process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from bot.blocks import ids
from tests.conftest import PostgresDatabases
from tests.e2e.conftest import app_environment, running_app
from tests.e2e.harness import (
    CHANNEL,
    SECRETS,
    WHATSAPP_VERIFY,
    AppProcess,
    block_action,
    free_port,
    message_event,
)
from tests.e2e.test_whatsapp_slack import lead_writes, rep_says, thread
from tests.mailserver import DOMAIN, LEAD_DOMAIN, USERS, MailServers, need_mail_servers, running_mail_servers
from tests.standins.graph_api import GraphStandIn
from tests.standins.openai_api import OpenAIStandIn, decision
from tests.standins.slack_api import SlackStandIn
from tests.standins.unipile import UnipileStandIn, attendee, message_webhook

RUNTIMES = ("embedded-sqlite",)  # the distributed test below sets up its own runtime

OPENAI_KEY = "sk-observability-openai-key-7f3a"
UNIPILE_KEY = "unipile-observability-api-key-2c9d"
UNIPILE_HOOK = "unipile-observability-hook-secret-5e1b"
DB_PASSWORD = "pg-observability-password-8d2e"
REDIS_PASSWORD = "redis-observability-password-4a7c"
ACCOUNT, OWN, CHAT = "acc-observability", "ACoAAOBSERVER", "chat-observability"
JANE_MAIL = f"jane@{LEAD_DOMAIN}"
ANSWER = "We ship to every EU country within five days."
NO_DISK = ("--save", "", "--appendonly", "no", "--dir")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# --- reading /metrics ------------------------------------------------------------------------------------


def scrape(url: str) -> Samples:
    """Every sample of a Prometheus exposition, parsed by prometheus_client's own parser."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over the samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (sample, have), value in samples.items() if sample == name and wanted <= have)


def named(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


def wait_until(probe: Callable[[], bool], *, timeout: float = 60.0, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling a condition, not waiting for a result


def settled(web: Samples) -> bool:
    """No work left: nothing waits in the inbox or the outbox (scraped from the database's gauges)."""
    return (
        total(web, "threadline_inbox_deliveries", status="new")
        + total(web, "threadline_inbox_deliveries", status="running")
        + total(web, "threadline_outbox_items", status="pending")
        + total(web, "threadline_outbox_items", status="running")
    ) == 0


# --- a Redis that wants a password ---------------------------------------------------------------------


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            REDIS_PASSWORD,
            *NO_DISK,
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    try:
        wait_until(lambda: _answers(url), timeout=10, what="redis-server")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


# --- the distributed app with everything on ------------------------------------------------------------


@pytest.fixture
def unipile() -> Iterator[UnipileStandIn]:
    standin = UnipileStandIn(api_key=UNIPILE_KEY, account_id=ACCOUNT, own_provider_id=OWN)
    standin.start()
    standin.add_chat(CHAT)
    yield standin
    standin.stop()
    assert standin.violations == []


@pytest.fixture
def openai_api() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn(api_key=OPENAI_KEY, model="gpt-observability") as server:
        server.default = decision(ANSWER, intent="question")
        yield server


@pytest.fixture
def mail_servers() -> Iterator[MailServers]:
    need_mail_servers()
    with running_mail_servers() as servers:
        yield servers


def test_both_processes_show_what_they_did_json_lines_carry_the_conversation_and_no_secret_is_logged(
    postgres_databases: PostgresDatabases,
    redis_with_password: str,
    slack: SlackStandIn,
    graph: GraphStandIn,
    unipile: UnipileStandIn,
    openai_api: OpenAIStandIn,
    mail_servers: MailServers,
    tmp_path: Path,
):
    database = make_url(postgres_databases.create()).set(password=DB_PASSWORD)  # trusted: not checked
    worker_port = free_port()
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "shipping.md").write_text("# Shipping\nWe ship to every EU country within five days.\n")
    env = app_environment(
        {"DATABASE_URL": database.render_as_string(hide_password=False), "REDIS_URL": redis_with_password},
        slack,
        graph,
        tmp_path,
    ) | {
        "THREADLINE_LOG_FORMAT": "json",
        "THREADLINE_WORKER_METRICS_PORT": str(worker_port),
        "THREADLINE_SLACK_POST_BURST": "1",  # our own pace defers posts: rate-limit waits to count
        "THREADLINE_SLACK_POSTS_PER_SECOND": "10",  # a thread entry right after its card waits
        "UNIPILE_API_URL": unipile.base_url,
        "UNIPILE_API_KEY": UNIPILE_KEY,
        "UNIPILE_ACCOUNT_ID": ACCOUNT,
        "UNIPILE_WEBHOOK_SECRET": UNIPILE_HOOK,
        "EMAIL_IMAP_URL": mail_servers.imap_url(),
        "EMAIL_SMTP_URL": mail_servers.smtp_url(),
        "EMAIL_FROM": f"Acme Sales <sales@{DOMAIN}>",
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": openai_api.base_url,
        "THREADLINE_AI_MODEL": "gpt-observability",
        "THREADLINE_KNOWLEDGE_DIR": str(knowledge),
    }
    secrets = {
        **SECRETS,
        "verify token": WHATSAPP_VERIFY,
        "OpenAI key": OPENAI_KEY,
        "Unipile key": UNIPILE_KEY,
        "Unipile webhook secret": UNIPILE_HOOK,
        "database password": DB_PASSWORD,
        "Redis password": REDIS_PASSWORD,
        **{f"mail password of {user}": password for user, password in USERS.items()},
    }
    slack.fail_next("chat.postMessage", "ratelimited", retry_after=1)  # Slack's 429 once, Retry-After 1

    with running_app(env, tmp_path / "threadline.log") as app:
        web_url, worker_url = f"{app.url}/metrics", f"http://127.0.0.1:{worker_port}/metrics"
        wait_until(lambda: _serves(worker_url), what="the worker's metrics endpoint")

        lead_writes(app, "Do you ship to Lisbon?", message_id="wamid.obs.1")
        linkedin = message_webhook(
            account_id=ACCOUNT,
            chat_id=CHAT,
            message_id="li-obs-1",
            text="Do you ship to Porto?",
            sender=attendee("ACoAAJOHNROE", "John Roe"),
            attendees=[attendee(OWN, "Ana Lima")],
        )
        answer = httpx.post(
            f"{app.url}/webhooks/linkedin",
            json=linkedin,
            headers={"X-Unipile-Secret": UNIPILE_HOOK},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = f"Jane Doe <{JANE_MAIL}>", f"sales@{DOMAIN}", "Shipping"
        mail["Message-ID"] = f"<obs-1@{LEAD_DOMAIN}>"
        mail.set_content("Do you ship to Faro?")
        mail_servers.send(mail, user=JANE_MAIL)

        # The agent answers each lead over their own channel.
        graph.wait_for(lambda: len(graph.sent) == 1, timeout=60)
        unipile.wait_for(lambda: len(unipile.sent) == 1, timeout=60)
        mail_servers.wait_for_mail(JANE_MAIL, 1, timeout=60)

        # A teammate takes the WhatsApp conversation over and replies in its thread.
        card_ts = str(_card_of(slack, "WhatsApp")["ts"])
        take_over = _button(slack.message(CHANNEL, card_ts), ids.TAKE_OVER)
        clicked = app.slack_interaction(block_action(user="U0ANA", card_ts=card_ts, action=take_over))
        assert clicked.status_code == 200, clicked.text
        slack.wait_for(lambda: "<@U0ANA>" in json.dumps(slack.message(CHANNEL, card_ts)))
        ts = slack.post_as_user(CHANNEL, "U0ANA", "Yes, Lisbon in two days.", thread_ts=card_ts)
        event = message_event(user="U0ANA", text="Yes, Lisbon in two days.", ts=ts, thread_ts=card_ts)
        assert app.slack_event(event).status_code == 200
        graph.wait_for(lambda: len(graph.sent) == 2, timeout=60)

        wait_until(lambda: settled(scrape(web_url)), what="the inbox and outbox to drain")
        web, worker = scrape(web_url), scrape(worker_url)
        both = {key: web.get(key, 0) + worker.get(key, 0) for key in web.keys() | worker.keys()}

        # From the database, whichever process is asked: messages, deliveries, backlogs, connections.
        for channel in ("whatsapp", "linkedin", "email"):
            assert total(web, "threadline_messages_stored", channel=channel, direction="inbound") == 1
        outbound = {"whatsapp": 2, "linkedin": 1, "email": 1}
        for channel, count in outbound.items():
            assert total(web, "threadline_messages_stored", channel=channel, direction="outbound") == count
            assert total(web, "threadline_deliveries", channel=channel, status="sent") == count, channel
            assert total(web, "threadline_deliveries", channel=channel, status="failed") == 0
        assert total(web, "threadline_inbox_deliveries", status="parked") == 0
        assert total(web, "threadline_outbox_items", status="failed") == 0
        assert total(web, "threadline_outbox_oldest_due_seconds") == 0
        assert total(web, "threadline_inbox_oldest_seconds") == 0
        assert set(named(web, "threadline_connection_broken").values()) <= {0.0}
        assert total(web, "threadline_ai_decisions", outcome="replied") == 3
        assert total(web, "threadline_ai_tokens", kind="prompt") > 0
        assert total(web, "threadline_webhooks_accepted_total", source="whatsapp") == 1
        assert total(web, "threadline_webhooks_accepted_total", source="linkedin") == 1

        # From the worker, which did the work: it is not in the web process's counters at all.
        assert total(web, "threadline_outbound_messages_total") == 0
        for channel, count in outbound.items():
            assert (
                total(worker, "threadline_outbound_messages_total", channel=channel, outcome="sent") == count
            )
            assert total(worker, "threadline_inbound_messages_total", channel=channel, outcome="stored") == 1
        assert total(worker, "threadline_outbound_messages_total", outcome="failed") == 0
        # Each provider call counted once, as the provider saw it; none failed.
        assert total(both, "threadline_provider_call_seconds_count", provider="graph") == len(graph.calls)
        assert total(both, "threadline_provider_call_seconds_count", provider="unipile") == len(unipile.calls)
        assert total(worker, "threadline_provider_call_seconds_count", provider="smtp") == 1
        assert total(worker, "threadline_provider_call_seconds_count", provider="openai") == len(
            openai_api.chats
        )
        assert total(both, "threadline_provider_errors_total") == 0
        # Slack: every chat.postMessage Slack saw, the refused one too, counted; the 429 as such, and waited.
        posts = len(slack.calls_to("chat.postMessage"))
        assert total(both, "threadline_slack_api_call_seconds_count", method="chat.postMessage") == posts
        assert total(worker, "threadline_slack_api_errors_total", error="ratelimited") == 1
        assert total(worker, "threadline_rate_limit_waits_total", service="slack", kind="retry_after") == 1
        assert (
            total(worker, "threadline_rate_limit_wait_seconds_total", service="slack", kind="retry_after")
            == 1
        )
        assert total(worker, "threadline_rate_limit_waits_total", service="slack", kind="pace") >= 1
        assert total(worker, "threadline_outbox_jobs_total", kind="deliver", outcome="done") == 4

    lines = (tmp_path / "threadline.log").read_text(errors="replace").splitlines()
    leaked = [name for name, value in secrets.items() if any(value in line for line in lines)]
    assert leaked == [], f"secrets in the logs: {leaked}"
    # Every line one JSON object — but for the notice Celery prints itself (not a log record) at shutdown.
    printed = [line for line in lines if not line.startswith("{")]
    assert set(printed) <= {"", "worker: Warm shutdown (MainProcess)"}, printed
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert {"ts", "level", "logger", "message"} <= set(records[0])
    assert any(r["level"] == "DEBUG" and r["logger"].startswith("slack_sdk") for r in records)
    sent_mail = [
        r for r in records if r["logger"] == "channels.email.outbound" and " sent to " in r["message"]
    ]
    assert len(sent_mail) == 1 and sent_mail[0]["job"] == "deliver" and "conversation_id" in sent_mail[0]
    assert any(r.get("slack") == f"block_actions:{ids.TAKE_OVER}" for r in records)


def _serves(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _card_of(slack: SlackStandIn, channel_name: str) -> dict[str, Any]:
    """The card of the conversation on that lead channel (there is one per lead here)."""

    def found() -> dict[str, Any] | None:
        for card in slack.messages(CHANNEL):
            if channel_name in card["text"] + json.dumps(card.get("blocks") or []):
                return card
        return None

    slack.wait_for(lambda: found() is not None)
    card = found()
    assert card is not None
    return card


def _button(card: dict[str, Any], action_id: str) -> dict[str, Any]:
    for block in card.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return {**element, "block_id": block.get("block_id")}
    raise AssertionError(f"no {action_id} button on the card")


# --- the embedded runtime: one endpoint has it all -----------------------------------------------------


def test_embedded_one_endpoint_shows_a_message_each_way_with_its_slack_and_graph_calls(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(app, "Hi, is the Pro plan on sale?", message_id="wamid.obs.embedded")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    rep_says(app, slack, "It is, until Friday.")
    graph.wait_for(lambda: len(graph.sent) == 1)
    url = f"{app.url}/metrics"
    wait_until(lambda: settled(scrape(url)), what="the inbox and outbox to drain")
    metrics = scrape(url)
    assert total(metrics, "threadline_inbound_messages_total", channel="whatsapp", outcome="stored") == 1
    assert total(metrics, "threadline_outbound_messages_total", channel="whatsapp", outcome="sent") == 1
    assert total(metrics, "threadline_deliveries", channel="whatsapp", status="sent") == 1
    assert total(metrics, "threadline_provider_call_seconds_count", provider="graph") == len(graph.calls)
    posts = len(slack.calls_to("chat.postMessage"))
    assert posts >= 2  # the card and the lead's message in its thread
    assert total(metrics, "threadline_slack_api_call_seconds_count", method="chat.postMessage") == posts
    assert total(metrics, "threadline_slack_api_errors_total") == 0
    assert total(metrics, "threadline_inbox_deliveries", status="parked") == 0
    log = app.logs()
    assert "[job=deliver outbox_id=" in log  # text lines carry the work's context too
