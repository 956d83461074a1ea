"""the inbox in Slack: who is waiting since when (SLA reminders), satisfaction, message DMs, edits

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("campaign") as table:  # routes are configuration now (THREADLINE_ROUTES)
        table.drop_column("slack_channel")
    with op.batch_alter_table("member") as table:
        table.add_column(
            sa.Column("notify_on_message", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    with op.batch_alter_table("conversation") as table:
        for name in ("waiting_since", "sla_reminded_at", "csat_asked_at", "csat_at"):
            table.add_column(sa.Column(name, _AT, nullable=True))
        table.add_column(sa.Column("csat_score", sa.Integer(), nullable=True))
    with op.batch_alter_table("message") as table:
        table.add_column(sa.Column("deleted_at", _AT, nullable=True))
        table.add_column(sa.Column("edited_at", _AT, nullable=True))
    # A lead whose last message is still unanswered has been waiting since then.
    op.execute(
        "UPDATE conversation SET waiting_since = last_inbound_at "
        "WHERE status = 'open' AND last_inbound_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("message") as table:
        table.drop_column("edited_at")
        table.drop_column("deleted_at")
    with op.batch_alter_table("conversation") as table:
        for name in ("csat_score", "csat_at", "csat_asked_at", "sla_reminded_at", "waiting_since"):
            table.drop_column(name)
    with op.batch_alter_table("member") as table:
        table.drop_column("notify_on_message")
    with op.batch_alter_table("campaign") as table:
        table.add_column(sa.Column("slack_channel", sa.String(length=32), nullable=True))
