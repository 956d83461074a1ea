"""a status that beats our record of the send keeps whether it said the reply window had closed
(WhatsApp's 131047), so the thread offers templates for it too

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("early_status") as table:
        table.add_column(sa.Column("needs_template", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("early_status") as table:
        table.drop_column("needs_template")
