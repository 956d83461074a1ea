"""`threadline check` as the operator's first stop: work nobody takes is a FAIL line saying what to do,
and it says where the metrics are — on a real (SQLite) database, with the lines as printed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from app.checks import run_checks
from core import migrate
from core.db import Database, make_engine
from core.models import Inbox, Outbox, utcnow
from core.outbox import JobKind, queue
from core.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("THREADLINE_ENV_FILE", "")
    url = f"sqlite:///{tmp_path / 'check.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return Settings.load(DATABASE_URL=url, PORT=3999)


def lines_of(settings: Settings) -> dict[str, str]:
    printed: list[str] = []
    run_checks(settings, printed.append)
    return {line[9:27].strip(): line for line in printed if line.startswith("[")}


def test_fresh_work_is_fine_and_the_metrics_endpoint_is_named(settings: Settings):
    db = Database(settings.database_url)
    with db.transaction() as session:
        queue(session, JobKind.CHANNEL_HEALTH, None)
    db.dispose()
    lines = lines_of(settings)
    assert lines["outbox"].startswith("[  ok  ]") and "1 pending" in lines["outbox"]
    assert lines["inbox"].startswith("[  ok  ]")
    assert "http://127.0.0.1:3999/metrics" in lines["metrics"] and "one endpoint" in lines["metrics"]


def test_work_due_for_minutes_and_untaken_fails_and_says_to_look_at_the_worker(settings: Settings):
    db = Database(settings.database_url)
    with db.transaction() as session:
        queue(session, JobKind.CHANNEL_HEALTH, None)
        session.add(Inbox(source="whatsapp", dedupe_key="k1", body=b"{}"))
    with db.transaction() as session:
        long_ago = utcnow() - timedelta(minutes=10)
        session.execute(update(Outbox).values(next_attempt_at=long_ago))
        session.execute(update(Inbox).values(received_at=long_ago))
    db.dispose()
    lines = lines_of(settings)
    assert lines["outbox"].startswith("[ FAIL ]")
    assert "due work is not being taken" in lines["outbox"] and "`threadline run`" in lines["outbox"]
    assert lines["inbox"].startswith("[ FAIL ]") and "nothing is processing it" in lines["inbox"]


def test_distributed_says_whether_the_workers_metrics_are_served(settings: Settings):
    unserved = Settings.load(DATABASE_URL=settings.DATABASE_URL, REDIS_URL="redis://127.0.0.1:1/0")
    assert "set THREADLINE_WORKER_METRICS_PORT" in lines_of(unserved)["metrics"]
    served = Settings.load(
        DATABASE_URL=settings.DATABASE_URL,
        REDIS_URL="redis://127.0.0.1:1/0",
        THREADLINE_WORKER_METRICS_PORT=9464,
    )
    assert "each worker's at http://127.0.0.1:9464/metrics" in lines_of(served)["metrics"]
