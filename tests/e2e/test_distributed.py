"""The distributed deployment: separate web and worker processes. (A Redis outage that loses nothing,
on every channel, is in test_faults.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PostgresDatabases
from tests.e2e.faults_support import cli, stop
from tests.e2e.harness import AppProcess
from tests.e2e.test_whatsapp_slack import lead_writes, thread
from tests.standins.slack_api import SlackStandIn


@pytest.fixture
def postgres_env(app_env: dict[str, str], postgres_databases: PostgresDatabases) -> dict[str, str]:
    return {**app_env, "DATABASE_URL": postgres_databases.create()}


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
