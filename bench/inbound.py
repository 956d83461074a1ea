"""Benchmark: how fast Threadline stores inbound messages and drains the mirror work they create.

Prints figures; asserts nothing. Runs against SQLite by default, or the database in DATABASE_URL:

    .venv/bin/python bench/inbound.py [--messages 2000] [--leads 200] [--workers 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from core import migrate
from core.actions.inbound import do_receive
from core.db import Database
from core.outbox import JobKind, OutboxRunner
from core.ports import Inbound, LeadProfile


def inbound(n: int, leads: int) -> Inbound:
    wa_id = f"1555{n % leads:07d}"
    return Inbound(
        channel="whatsapp",
        channel_account="BENCH",
        provider_thread_id=wa_id,
        provider_message_id=f"wamid.bench.{n}",
        sender=LeadProfile(provider_id=wa_id, name=f"Lead {n % leads}"),
        sent_at=datetime.now(UTC),
        text=f"message {n}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--leads", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    db = Database(url)
    migrate.upgrade(db.engine)

    latencies: list[float] = []

    def store(n: int) -> None:
        started = time.perf_counter()
        db.run(lambda session: do_receive(session, inbound(n, args.leads), ai_available=False))
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(store, range(args.messages)))
    elapsed = time.perf_counter() - started
    duplicates_started = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(store, range(min(500, args.messages))))
    duplicates_elapsed = time.perf_counter() - duplicates_started

    runner = OutboxRunner(db, {kind: (lambda job: None) for kind in JobKind})
    drain_started = time.perf_counter()
    due = runner.due(limit=args.messages * 2)
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(runner.run, due))
    drain = time.perf_counter() - drain_started

    latencies.sort()
    print(f"database             {db.engine.dialect.name}")
    print(f"messages stored      {args.messages} from {args.leads} leads, {args.workers} threads")
    print(f"throughput           {args.messages / elapsed:,.0f} messages/s")
    print(
        f"latency p50 / p99    {statistics.median(latencies) * 1000:.1f} ms / "
        f"{latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms"
    )
    print(f"duplicate deliveries {min(500, args.messages) / duplicates_elapsed:,.0f} /s (stored nothing new)")
    rate = len(due) / drain
    print(f"outbox drained       {len(due)} jobs in {drain:.2f} s ({rate:,.0f} jobs/s, handler no-op)")
    db.dispose()


if __name__ == "__main__":
    main()
