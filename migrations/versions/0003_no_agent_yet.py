"""no agent yet: AI work queued by an earlier version fails, and conversations it left active turn manual

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An earlier version queued ai_reply work that nothing ever ran; the card said "AI: active" while
    # no agent answered. Say what happened, and hand those conversations to people.
    op.execute(
        "UPDATE outbox SET status = 'failed', locked_until = NULL, "
        "last_error = 'no AI agent runs in this version' "
        "WHERE kind = 'ai_reply' AND status IN ('pending', 'running')"
    )
    op.execute(
        "INSERT INTO event (conversation_id, kind, actor, old, new, created_at) "
        "SELECT id, 'ai_mode', 'system', '{\"ai_mode\": \"active\"}', '{\"ai_mode\": \"manual\"}', "
        "CURRENT_TIMESTAMP FROM conversation WHERE ai_mode = 'active'"
    )
    op.execute("UPDATE conversation SET ai_mode = 'manual', version = version + 1 WHERE ai_mode = 'active'")


def downgrade() -> None:
    pass  # nothing to undo: the failed work and the manual conversations are what really happened
