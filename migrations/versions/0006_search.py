"""search for /leads: full-text over message text, trigram over lead name, company and email

PostgreSQL: a GIN index on to_tsvector('simple', message.text) and pg_trgm GIN indexes on lead.name,
lead.company and lead.email (ILIKE '%word%' uses them). SQLite: an FTS5 table over message text,
kept in step by triggers (core.search_index). The models do not declare these objects; comparing the
models with the schema skips them (core.migrate.include_object).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from core import search_index

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in search_index.POSTGRES_UP:
            op.execute(statement)
    else:
        for statement in search_index.SQLITE_UP:
            op.execute(statement)
        search_index.ensure_sqlite_triggers(bind)


def downgrade() -> None:
    bind = op.get_bind()
    statements = search_index.POSTGRES_DOWN if bind.dialect.name == "postgresql" else search_index.SQLITE_DOWN
    for statement in statements:
        op.execute(statement)
