"""templates and why a send failed: a message may be a channel's pre-approved template (WhatsApp after
its 24-hour window), and a failed one keeps the failure's kind next to its reason (`needs_template`
makes the thread offer the templates instead of a plain Retry)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as table:
        table.add_column(sa.Column("template", sa.JSON(), nullable=True))
        table.add_column(sa.Column("delivery_error_code", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message") as table:
        table.drop_column("delivery_error_code")
        table.drop_column("template")
