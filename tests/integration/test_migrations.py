"""One migration history for PostgreSQL and SQLite: up, down, up again, and in step with the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from core import migrate, search_index
from core.db import make_engine
from core.models import Base
from tests.conftest import PostgresDatabases


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    return databases.create()


def test_upgrade_downgrade_upgrade(empty_url: str):
    engine = make_engine(empty_url)
    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    assert {"conversation", "message", "outbox", "processed_event"} <= set(inspect(engine).get_table_names())

    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    engine.dispose()


def test_models_and_migrations_agree(empty_url: str):
    engine = make_engine(empty_url)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": search_index.include_object}
        )
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == [], "models changed without a migration: run alembic revision --autogenerate"


def test_processes_starting_at_once_migrate_once(empty_url: str):
    # Separate processes, as in production: Alembic's context is process-global, not thread-safe.
    script = "import sys; from core import migrate; from core.db import make_engine; migrate.upgrade(make_engine(sys.argv[1]))"
    starters = [
        subprocess.Popen([sys.executable, "-c", script, empty_url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=120), p.communicate()[1]) for p in starters]
    assert [err for code, err in outcomes if code != 0] == []
    engine = make_engine(empty_url)
    assert migrate.is_current(engine)
    engine.dispose()


def test_the_lead_identity_migration_keeps_every_way_a_lead_was_known(empty_url: str):
    from sqlalchemy import text

    engine = make_engine(empty_url)
    migrate.upgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO lead (id, name, email, whatsapp_id, linkedin_id, created_at) VALUES "
                "(1, 'Jane', 'Jane@Example.com', '15551234567', NULL, CURRENT_TIMESTAMP), "
                "(2, 'Li', NULL, NULL, 'ACoAAB', CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO conversation (id, lead_id, channel, channel_account, provider_thread_id, status, "
                "ai_mode, unread_count, last_activity_at, created_at, version) VALUES "
                "(7, 1, 'whatsapp', 'P1', '15551234567', 'open', 'manual', 1, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP, 1)"
            )
        )
    migrate.upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT lead_id, kind, value FROM lead_identity ORDER BY lead_id, kind")
        )
        identities = [tuple(row) for row in rows]
    engine.dispose()
    assert identities == [
        (1, "email", "jane@example.com"),
        (1, "whatsapp", "15551234567"),
        (2, "linkedin", "ACoAAB"),
    ]


def test_ai_work_queued_by_an_earlier_version_is_failed_and_its_conversations_turn_manual(empty_url: str):
    from sqlalchemy import text

    engine = make_engine(empty_url)
    migrate.upgrade(engine, "0002")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO lead (id, name, created_at) VALUES (1, 'Jane', CURRENT_TIMESTAMP)")
        )
        connection.execute(
            text(
                "INSERT INTO conversation (id, lead_id, channel, channel_account, provider_thread_id, status, "
                "ai_mode, unread_count, last_activity_at, created_at, version) VALUES "
                "(7, 1, 'whatsapp', 'P1', '1555', 'open', 'active', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO outbox (kind, conversation_id, payload, status, attempts, next_attempt_at, created_at) "
                "VALUES ('ai_reply', 7, '{}', 'pending', 3, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    migrate.upgrade(engine)
    with engine.connect() as connection:
        outbox = connection.execute(text("SELECT status, last_error FROM outbox")).one()
        mode = connection.execute(text("SELECT ai_mode FROM conversation")).scalar_one()
        audit = connection.execute(text("SELECT kind, actor FROM event")).all()
    engine.dispose()
    assert outbox[0] == "failed" and "no AI agent" in outbox[1]
    assert mode == "manual" and [tuple(row) for row in audit] == [("ai_mode", "system")]


def test_phone_numbers_stored_before_recognise_their_lead_unless_two_leads_share_one(empty_url: str):
    from sqlalchemy import text

    engine = make_engine(empty_url)
    migrate.upgrade(engine, "0006")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO lead (id, name, phone, created_at) VALUES "
                "(1, 'Jane', '+1 (555) 123-4567', CURRENT_TIMESTAMP), "
                "(2, 'Li', '0044 20 7946 0958', CURRENT_TIMESTAMP), "
                "(3, 'Bo', '+44 20 7946 0958', CURRENT_TIMESTAMP), "
                "(4, 'Al', 'not a number', CURRENT_TIMESTAMP)"
            )
        )
    migrate.upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT lead_id, value FROM lead_identity WHERE kind = 'phone'"))
        identities = [tuple(row) for row in rows]
    migrate.downgrade(engine, "0006")
    with engine.connect() as connection:
        left = connection.scalar(text("SELECT count(*) FROM lead_identity WHERE kind = 'phone'"))
    engine.dispose()
    assert identities == [(1, "+15551234567")]
    assert left == 0
