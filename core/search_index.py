"""The search objects behind `/leads` (migration 0006), which the models cannot declare: an expression
index and trigram indexes on PostgreSQL, an FTS5 table and its triggers on SQLite.

SQLite drops a table's triggers with the table, and Alembic's batch mode rebuilds a table by copying
it: a later migration that alters `message` would silently stop the FTS table's updates. So every
upgrade ends by putting the triggers back (`ensure_sqlite_triggers`, from core.migrate); a copy keeps
ids and text, so the index is still right.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, text

POSTGRES_UP = (
    # A trusted extension since PostgreSQL 13: the database owner may create it.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_search_message_text ON message USING gin (to_tsvector('simple', text))",
    "CREATE INDEX IF NOT EXISTS ix_search_lead_name ON lead USING gin (name gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_search_lead_company ON lead USING gin (company gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_search_lead_email ON lead USING gin (email gin_trgm_ops)",
)
# The extension stays: other objects in the database may use it.
POSTGRES_DOWN = tuple(
    f"DROP INDEX IF EXISTS {name}"
    for name in (
        "ix_search_message_text",
        "ix_search_lead_name",
        "ix_search_lead_company",
        "ix_search_lead_email",
    )
)

SQLITE_UP = (
    # External content: the text lives once, in message; diacritics kept, as PostgreSQL's 'simple' does.
    "CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5("
    "text, content='message', content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "INSERT INTO message_fts(message_fts) VALUES ('rebuild')",
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS message_fts_insert AFTER INSERT ON message BEGIN "
    "INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS message_fts_delete AFTER DELETE ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER IF NOT EXISTS message_fts_update AFTER UPDATE OF text ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
)
SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS message_fts_insert",
    "DROP TRIGGER IF EXISTS message_fts_delete",
    "DROP TRIGGER IF EXISTS message_fts_update",
    "DROP TABLE IF EXISTS message_fts",
)

_UNMODELLED = re.compile(r"^(ix_search_\w+|message_fts(_\w+)?)$")


def ensure_sqlite_triggers(connection: Connection) -> None:
    """Put back the FTS triggers if the FTS table exists (see the module's docstring)."""
    found = connection.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'message_fts'")
    ).first()
    if found is not None:
        for statement in SQLITE_TRIGGERS:
            connection.execute(text(statement))


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """For Alembic's comparison of models and schema: leave out the search objects only the schema has."""
    return not (reflected and compare_to is None and name is not None and bool(_UNMODELLED.match(name)))
