"""Schema migrations, safe when several processes start at once (DESIGN §5)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine

import migrations
from core import search_index

MIGRATIONS_DIR = Path(migrations.__file__).parent
# Any fixed number works; it names Threadline's migration lock among PostgreSQL advisory locks.
_PG_LOCK_ID = 0x7468726561646C6E


def alembic_config(connection: Connection) -> Config:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    with _migration_lock(engine) as connection:
        command.upgrade(alembic_config(connection), revision)
        if engine.dialect.name == "sqlite":  # a batch rebuild of `message` would have dropped them
            search_index.ensure_sqlite_triggers(connection)


def downgrade(engine: Engine, revision: str) -> None:
    with _migration_lock(engine) as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """Hold a database-wide lock while migrating, so a second process waits and then finds it done.

    PostgreSQL: a session advisory lock. SQLite: the migration's own transaction begins IMMEDIATE
    (core.db), which already serialises writers; and foreign keys are off meanwhile, because SQLite
    alters a table by copying it, and dropping the old copy must not cascade to the rows that refer to
    it. The keys are checked before they are turned back on.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_LOCK_ID})
            connection.commit()
            try:
                yield connection
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_LOCK_ID})
                connection.commit()
        else:
            raw = connection.connection.driver_connection  # outside any transaction: PRAGMA takes effect
            assert raw is not None
            raw.execute("PRAGMA foreign_keys=OFF")
            try:
                yield connection
                dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if dangling:
                    raise RuntimeError(f"migration left rows pointing nowhere: {dangling[:5]}")
                connection.commit()
            finally:
                raw.execute("PRAGMA foreign_keys=ON")
