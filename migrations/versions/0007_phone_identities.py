"""phone numbers recognise a lead across channels: a `phone` identity for each lead's known number

New messages add these as they come (core.identity); this backfills leads stored before, in E.164,
skipping a number that two leads share (it stays ambiguous, as a later match would be).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from core.identity import PHONE, normal_phone

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_lead = sa.table("lead", sa.column("id", sa.Integer), sa.column("phone", sa.String))
_identity = sa.table(
    "lead_identity",
    sa.column("lead_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("value", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    bind = op.get_bind()
    numbers = {
        lead_id: normal_phone(phone)
        for lead_id, phone in bind.execute(
            sa.select(_lead.c.id, _lead.c.phone).where(_lead.c.phone.is_not(None))
        )
    }
    shared = Counter(number for number in numbers.values() if number)
    taken = set(bind.scalars(sa.select(_identity.c.value).where(_identity.c.kind == PHONE)))
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # as the models store it there (core.models.UTCDateTime)
    rows = [
        {"lead_id": lead_id, "kind": PHONE, "value": number, "created_at": now}
        for lead_id, number in numbers.items()
        if number and shared[number] == 1 and number not in taken
    ]
    if rows:
        bind.execute(_identity.insert(), rows)


def downgrade() -> None:
    op.execute(_identity.delete().where(_identity.c.kind == PHONE))
