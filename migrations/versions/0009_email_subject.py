"""email: a message keeps its subject line (a reply says "Re: …") and, when `text` shows only its new
part (quoted history and signature cut off), the whole text a click away

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as table:
        table.add_column(sa.Column("subject", sa.String(length=998), nullable=True))
        table.add_column(sa.Column("full_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message") as table:
        table.drop_column("full_text")
        table.drop_column("subject")
