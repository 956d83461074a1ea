"""lead identities: one table for every way we recognise a lead, so core names no channel

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lead_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["lead.id"], name=op.f("fk_lead_identity_lead_id_lead"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_identity")),
        sa.UniqueConstraint("kind", "value", name=op.f("uq_lead_identity_kind_value")),
    )
    with op.batch_alter_table("lead_identity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_identity_lead_id"), ["lead_id"], unique=False)

    # What the lead table knew becomes identities: the channel ids, and email addresses case-folded.
    for kind, column in (("whatsapp", "whatsapp_id"), ("linkedin", "linkedin_id")):
        op.execute(
            f"INSERT INTO lead_identity (lead_id, kind, value, created_at) "  # noqa: S608 (constants)
            f"SELECT id, '{kind}', {column}, created_at FROM lead WHERE {column} IS NOT NULL"
        )
    # Addresses are folded as the code folds them (str.casefold, not SQL's ASCII-only LOWER).
    connection = op.get_bind()
    seen: set[str] = set()
    rows = connection.execute(
        sa.text("SELECT id, email, created_at FROM lead WHERE email IS NOT NULL ORDER BY id")
    )
    for lead_id, email, created_at in rows.all():
        folded = email.strip().casefold()
        if folded and folded not in seen:
            seen.add(folded)
            connection.execute(
                sa.text(
                    "INSERT INTO lead_identity (lead_id, kind, value, created_at) "
                    "VALUES (:lead, 'email', :value, :at)"
                ),
                {"lead": lead_id, "value": folded, "at": created_at},
            )
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_lead_email"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_lead_linkedin_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_lead_whatsapp_id"), type_="unique")
        batch_op.drop_column("linkedin_id")
        batch_op.drop_column("whatsapp_id")


def downgrade() -> None:
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.add_column(sa.Column("whatsapp_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("linkedin_id", sa.String(length=200), nullable=True))
    for kind, column in (("whatsapp", "whatsapp_id"), ("linkedin", "linkedin_id")):
        op.execute(
            f"UPDATE lead SET {column} = (SELECT MIN(value) FROM lead_identity "  # noqa: S608 (constants)
            f"WHERE lead_identity.lead_id = lead.id AND lead_identity.kind = '{kind}')"
        )
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_lead_whatsapp_id"), ["whatsapp_id"])
        batch_op.create_unique_constraint(batch_op.f("uq_lead_linkedin_id"), ["linkedin_id"])
        batch_op.create_unique_constraint(batch_op.f("uq_lead_email"), ["email"])
    with op.batch_alter_table("lead_identity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_identity_lead_id"))
    op.drop_table("lead_identity")
