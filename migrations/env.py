"""Alembic environment: one migration history for PostgreSQL and SQLite.

The connection is handed in by `core.migrate` (config.attributes["connection"]), so the URL, the
engine settings and the lock that makes concurrent starts safe all live in one place.
"""

from __future__ import annotations

from alembic import context

from core import search_index
from core.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds the table instead
    compare_type=True,
    include_object=search_index.include_object,  # search indexes the models cannot declare (0006)
    # All pending migrations in one transaction, on SQLite too (Alembic would commit after each one
    # there): the transaction's write lock is then what makes concurrent starts wait for each other.
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
