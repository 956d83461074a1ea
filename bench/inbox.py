"""Benchmark: how fast the inbox runner turns stored WhatsApp webhooks into conversations and outbox work.

Prints figures and a ratio to a floor; asserts nothing. SQLite (a temp file) by default; with
DATABASE_URL=postgresql://… it creates a fresh database on that server and drops it at the end:

    .venv/bin/python bench/inbox.py [--messages 5000] [--leads 200] [--batch N]
    DATABASE_URL=postgresql://postgres@127.0.0.1/test .venv/bin/python bench/inbox.py

Stores N raw webhook bodies (one message each, spread over the leads) with `core.inbox.store`, then times
one `InboxRunner.run()` over all of them (parse, `do_receive` per message, outbox `mirror` rows, a batch
per transaction). The floor, on the same database in the same run: N message-like rows inserted into a
scratch table with one executemany in one transaction.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _common
from _common import lead_webhook, machine, verdict
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    func,
    select,
)

from channels.whatsapp.inbound import parse_webhook
from core import migrate
from core.db import Database
from core.inbox import BATCH, InboxRunner, store
from core.models import Conversation, Inbox, Lead, Message, Outbox

TARGET = 1000.0  # messages/s (the target)

scratch = MetaData()
FLOOR = Table(
    "bench_floor_message",
    scratch,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("lead", String(64), nullable=False),
    Column("provider_message_id", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)


@contextlib.contextmanager
def database_url() -> Iterator[str]:
    given = os.environ.get("DATABASE_URL")
    if given and given.startswith(("postgresql", "postgres")):
        with _common.fresh_postgres(given.replace("postgres://", "postgresql://", 1)) as url:
            yield _common.sqlalchemy_url(url)
        return
    with tempfile.TemporaryDirectory(prefix="bench-inbox-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


def bodies(count: int, leads: int) -> list[bytes]:
    return [lead_webhook(n, leads, f"wamid.inbox.{n}") for n in range(count)]


class StatementCounter:
    """Counts what SQLAlchemy sends to the database (an executemany counts once)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        event.listen(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1


def count_rows(db: Database, model: Any) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def floor_rate(db: Database, count: int, leads: int) -> float:
    """N message-like rows, one executemany in one transaction: the least storing N messages costs."""
    scratch.create_all(db.engine)
    now = datetime.now(UTC)
    rows = [
        {
            "channel": "whatsapp",
            "lead": f"1555{n % leads:07d}",
            "provider_message_id": f"wamid.floor.{n}",
            "text": f"benchmark message {n}",
            "sent_at": now,
        }
        for n in range(count)
    ]
    started = time.perf_counter()
    with db.engine.begin() as connection:
        connection.execute(FLOOR.insert(), rows)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000, help="webhooks stored, one message each")
    parser.add_argument("--leads", type=int, default=200, help="distinct senders (default 200)")
    defaults = ", ".join(f"{name} {size}" for name, size in BATCH.items())
    parser.add_argument("--batch", type=int, help=f"inbox batch size (default by database: {defaults})")
    args = parser.parse_args()

    with database_url() as url:
        db = Database(url)
        migrate.upgrade(db.engine)
        raw = bodies(args.messages, args.leads)

        started = time.perf_counter()
        for body in raw:
            store(db, "whatsapp", body)
        store_seconds = time.perf_counter() - started

        counter = StatementCounter(db)
        runner = InboxRunner(db, {"whatsapp": parse_webhook}, ai_available=False, batch=args.batch)
        args.batch = runner.batch
        started = time.perf_counter()
        processed = runner.run()
        run_seconds = time.perf_counter() - started
        statements = counter.count

        messages = count_rows(db, Message)
        with db.sessions() as session:
            states = dict(session.execute(select(Inbox.status, func.count()).group_by(Inbox.status)).all())
        floor = floor_rate(db, args.messages, args.leads)
        rate = messages / run_seconds

        print(f"machine          {machine()}")
        print(f"database         {db.engine.dialect.name}")
        print(f"webhooks         {args.messages} stored, one message each, from {args.leads} leads")
        print(
            f"store            {args.messages / store_seconds:,.0f} webhooks/s (core.inbox.store, one by one)"
        )
        print(
            f"inbox run        {processed} deliveries in {run_seconds:.2f} s, batches of {args.batch}: "
            f"{rate:,.0f} messages/s"
        )
        print(
            f"result           {messages} messages, {count_rows(db, Conversation)} conversations, "
            f"{count_rows(db, Lead)} leads, {count_rows(db, Outbox)} outbox rows; "
            f"inbox {{{', '.join(f'{k}: {v}' for k, v in states.items())}}}"
        )
        print(
            f"SQL              {statements / max(messages, 1):.1f} statements per message "
            f"({statements} in all)"
        )
        print(f"floor            {floor:,.0f} rows/s (executemany of {args.messages} rows, one transaction)")
        print(f"ratio            {rate / floor:.3f} of the floor")
        print(f"target           ≥ {TARGET:,.0f} messages/s: {verdict(rate >= TARGET)}")
        db.dispose()


if __name__ == "__main__":
    main()
