"""The distributed deployment: separate web and worker processes, and a Redis outage that loses nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core.models import Inbox
from tests.conftest import ROOT, PostgresDatabases
from tests.e2e.harness import AppProcess, free_port
from tests.e2e.test_whatsapp_slack import lead_writes, thread
from tests.standins.slack_api import SlackStandIn


@pytest.fixture
def postgres_env(app_env: dict[str, str], postgres_databases: PostgresDatabases) -> dict[str, str]:
    return {**app_env, "DATABASE_URL": postgres_databases.create()}


def cli(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    """A Redis of this test's own, so it can be stopped and started again."""
    port = free_port()
    servers: list[subprocess.Popen[bytes]] = []
    yield port, servers
    for server in servers:
        stop(server)


def start_redis(port: int, servers: list[subprocess.Popen[bytes]]) -> None:
    servers.append(
        subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.02)  # polling for readiness
    raise AssertionError("private redis did not start")


@pytest.mark.parametrize("runtime_env", ["celery-postgres"], indirect=True)
def test_migrate_then_web_and_worker_as_separate_processes(
    postgres_env: dict[str, str], slack: SlackStandIn, tmp_path: Path
):
    migrate = cli(postgres_env, "migrate", log=tmp_path / "migrate.log")
    assert migrate.wait(60) == 0, (tmp_path / "migrate.log").read_text()
    worker = cli(postgres_env, "worker", log=tmp_path / "worker.log")
    web = AppProcess(env=postgres_env, log_path=tmp_path / "web.log", command="web")
    web.start()
    try:
        lead_writes(web, "hello from the distributed setup", message_id="wamid.dist")
        slack.wait_for(lambda: len(slack.messages("C0LEADS")) == 1 and len(thread(slack)) == 1, timeout=30)
    finally:
        web.stop()
        stop(worker)
    assert "Traceback" not in (tmp_path / "worker.log").read_text()


@pytest.mark.parametrize("runtime_env", ["celery-postgres"], indirect=True)
def test_a_redis_outage_delays_work_but_loses_none(
    postgres_env: dict[str, str],
    slack: SlackStandIn,
    private_redis: tuple[int, list[subprocess.Popen[bytes]]],
    tmp_path: Path,
):
    port, servers = private_redis
    start_redis(port, servers)
    app = AppProcess(
        env={**postgres_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}, log_path=tmp_path / "app.log"
    )
    app.start()
    try:
        lead_writes(app, "before the outage", message_id="wamid.o1")
        slack.wait_for(lambda: len(thread(slack)) == 1, timeout=30)

        stop(servers.pop())  # Redis goes away
        lead_writes(app, "during the outage", message_id="wamid.o2")  # still answered 200: it is stored
        assert app.count(Inbox) == 2

        start_redis(port, servers)  # Redis is back: the sweep finds the work the lost nudge named
        slack.wait_for(lambda: len(thread(slack)) == 2, timeout=90)
        assert "during the outage" in thread(slack)[1]["text"]
    finally:
        app.stop()
