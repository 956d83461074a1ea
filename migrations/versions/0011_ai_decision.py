"""the AI agent: one ai_decision row per AI turn (what it decided, why, from which knowledge, at what
cost, and the team's feedback) and knowledge_entry (what it may answer from, corrections pending approval)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("answered_message_id", sa.Integer(), nullable=False),
        sa.Column("reply_message_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column("escalate", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("knowledge", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("feedback", sa.String(length=8), nullable=True),
        sa.Column("feedback_by_id", sa.Integer(), nullable=True),
        sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversation.id"], name=op.f("fk_ai_decision_conversation_id_conversation")
        ),
        sa.ForeignKeyConstraint(
            ["answered_message_id"], ["message.id"], name=op.f("fk_ai_decision_answered_message_id_message")
        ),
        sa.ForeignKeyConstraint(
            ["reply_message_id"], ["message.id"], name=op.f("fk_ai_decision_reply_message_id_message")
        ),
        sa.ForeignKeyConstraint(
            ["feedback_by_id"], ["member.id"], name=op.f("fk_ai_decision_feedback_by_id_member")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_decision")),
    )
    with op.batch_alter_table("ai_decision") as table:
        table.create_index(table.f("ix_ai_decision_conversation_id"), ["conversation_id"], unique=False)
    op.create_table(
        "knowledge_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["ai_decision.id"], name=op.f("fk_knowledge_entry_decision_id_ai_decision")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["member.id"], name=op.f("fk_knowledge_entry_created_by_id_member")
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by_id"], ["member.id"], name=op.f("fk_knowledge_entry_reviewed_by_id_member")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_entry")),
    )


def downgrade() -> None:
    op.drop_table("knowledge_entry")
    op.drop_index(op.f("ix_ai_decision_conversation_id"), table_name="ai_decision")
    op.drop_table("ai_decision")
