"""Shared fixtures: real databases (SQLite and PostgreSQL), real Redis, and the service policy.

Policy: outside CI a test that needs PostgreSQL or Redis when it is not running is skipped with a
one-line reason; with CI=true it fails, because a green run that skipped the real parts proves nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core import migrate
from core.db import Database
from core.models import Base
from core.outbox import Handler, Job, JobKind

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "tests" / "specs"
POSTGRES_URL = os.environ.get("THREADLINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1/test")
REDIS_URL = os.environ.get("THREADLINE_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def need_service(name: str, problem: str | None) -> None:
    """Skip (locally) or fail (CI) when a real service a test needs is not there."""
    if problem is None:
        return
    message = f"{name} is not running ({problem})"
    if IN_CI:
        pytest.fail(f"{message}; CI must run every test against real services", pytrace=False)
    pytest.skip(message)


def _postgres_problem() -> str | None:
    try:
        engine = create_engine(_psycopg_url(POSTGRES_URL), connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"{POSTGRES_URL}: {type(exc).__name__}"


def _redis_problem() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return None
    except Exception as exc:
        return f"{REDIS_URL}: {type(exc).__name__}"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    need_service("PostgreSQL", _postgres_problem())
    return _psycopg_url(POSTGRES_URL)


@pytest.fixture(scope="session")
def redis_url() -> str:
    need_service("Redis", _redis_problem())
    return REDIS_URL


class PostgresDatabases:
    """Creates throw-away databases on the test server, and drops them at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create(self) -> str:
        name = f"threadline_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return make_url(str(self.admin.url)).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            for name in self.created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases(postgres_admin_url: str) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_admin_url)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_databases: PostgresDatabases) -> str:
    url = postgres_databases.create()
    database = Database(url)
    migrate.upgrade(database.engine)
    database.dispose()
    return url


@dataclass
class DispatchLog:
    """What the database handed to the worker after commit (the outbox ids)."""

    batches: list[list[int]] = field(default_factory=list)

    def __call__(self, ids: list[int]) -> None:
        self.batches.append([getattr(offer, "id", offer) for offer in ids])

    @property
    def ids(self) -> list[int]:
        return [outbox_id for batch in self.batches for outbox_id in batch]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database of each kind; `db.dispatch` records what commits hand over."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'threadline.db'}", dispatch=DispatchLog())
        migrate.upgrade(database.engine)
    else:
        url = request.getfixturevalue("migrated_postgres_url")
        database = Database(url, dispatch=DispatchLog())
        with database.engine.begin() as connection:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield database
    database.dispose()


@pytest.fixture
def dispatched(db: Database) -> DispatchLog:
    assert isinstance(db.dispatch, DispatchLog)
    return db.dispatch


def handlers(given: dict[JobKind, Handler]) -> dict[JobKind, Handler]:
    """A handler for every outbox kind, as the runner demands: `given`, and for the rest one that fails
    the test if it is ever run."""

    def unexpected(job: Job) -> None:
        raise AssertionError(f"this test did not expect a {job.kind} job to run")

    return {kind: given.get(kind, unexpected) for kind in JobKind}
