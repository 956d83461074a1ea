"""inbox, channel accounts, early statuses; outbox leases with a fencing token, priority, offers; parts sent

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column(
            "health", sa.Enum("ok", "broken", name="health", native_enum=False, length=16), nullable=False
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("broken_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_account")),
        sa.UniqueConstraint("channel", "account", name=op.f("uq_channel_account_channel_account")),
    )
    op.create_table(
        "early_status",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("provider_message_id", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "sending",
                "sent",
                "delivered",
                "read",
                "failed",
                name="deliverystatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_early_status")),
        sa.UniqueConstraint(
            "channel",
            "provider_message_id",
            "status",
            name=op.f("uq_early_status_channel_provider_message_id_status"),
        ),
    )
    with op.batch_alter_table("early_status", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_early_status_created_at"), ["created_at"], unique=False)

    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("new", "running", "done", "parked", name="inboxstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("source", "dedupe_key", name=op.f("uq_inbox_source_dedupe_key")),
    )
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_status", ["status", "id"], unique=False)

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parts_sent", sa.Integer(), nullable=False, server_default="0"))

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("offered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_outbox_lane", ["conversation_id", "kind", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_lane")
        batch_op.drop_column("offered_at")
        batch_op.drop_column("priority")
        batch_op.drop_column("lease")

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("parts_sent")

    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_status")

    op.drop_table("inbox")
    with op.batch_alter_table("early_status", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_early_status_created_at"))

    op.drop_table("early_status")
    op.drop_table("channel_account")
