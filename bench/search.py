"""Benchmark: `/leads` latency (p50/p95) over a large inbox, on PostgreSQL and on SQLite at a tenth.

Prints figures; asserts nothing. The full size (the issue's: 100,000 conversations and 1,000,000
messages on PostgreSQL, a tenth on SQLite) takes a few minutes and most of the machine — run it when
nobody else is:

    .venv/bin/python bench/search.py [--database both|postgres|sqlite] [--conversations 100000]
        [--messages 1000000] [--runs 20]

PostgreSQL: a fresh database on BENCH_POSTGRES (default postgresql://postgres@127.0.0.1/test), dropped
at the end; SQLite: a temp file. The schema is migrated to 0005, the rows are written in bulk (COPY on
PostgreSQL, one executemany per table on SQLite), then migration 0006 builds the search indexes (its
time is printed: what upgrading a large inbox costs). Conversations spread over three Slack channels,
the reader is in two; 20 reps, 20 tags, 11 campaigns, a year of activity, messages drawn from a
Zipf-like vocabulary, so common words match many messages and rare ones few.

Each `/leads` variant (below) runs `--runs` times after one warm-up, in process: parse, the query
(count, page, previews) and the Block Kit build — what the handler does besides Slack's membership
lookups, which are cached. Floor: the cheapest page there is, ten conversation ids by last activity
from the (status, last_activity_at) index, on the same database in the same run.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _common
from _common import machine, percentile, verdict
from sqlalchemy import select

from bot.blocks.leads import build_leads_list
from bot.leads_grammar import ListRequest, parse
from core import migrate
from core.db import Database
from core.models import Conversation, Status
from core.queries.search import search_leads

TARGET_P95_MS = 100.0
CHANNELS = ("C0EAST", "C0WEST", "C0BOARD")
VISIBLE = ["C0EAST", "C0WEST"]
REPS, TAGS, CAMPAIGNS = 20, 20, 10
FIRST = "Ana Bruno Carla Diego Elena Fabio Gina Hugo Ines Joao Karin Luis Marta Nuno Olga Pedro Rita Sara"
LAST = "Silva Santos Ferreira Pereira Oliveira Costa Rodrigues Martins Sousa Fernandes Goncalves Gomes Lopes"
COMPANY = "Acme Globex Initech Umbrella Hooli Stark Wayne Wonka Cyberdyne Soylent Tyrell Aperture Oscorp"
COMMON = (
    "the a to and you we for is of your on this can in it our price pricing demo call meeting quote thanks"
)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    """Common words first, then made-up ones: drawn with a Zipf-like weight, the head dominates."""
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "pa", "do", "be", "fi", "gu"]
    made = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(size * 2)}
    common = COMMON.split()
    return common + sorted(made - set(common))[: size - len(common)]


def stamp(at: datetime, sqlite: bool) -> Any:
    return at.replace(tzinfo=None).isoformat(sep=" ") if sqlite else at


def generate(conversations: int, messages: int, sqlite: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Rows per table, as tuples in the column order of COLUMNS."""
    rng = random.Random(7)
    words = vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    tables: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}
    at0 = stamp(NOW - timedelta(days=400), sqlite)
    tables["member"] = [(n + 1, f"U0REP{n:02d}", f"Rep {n}", "rep", True, True, at0) for n in range(REPS)]
    tables["tag"] = [(n + 1, "vip" if n == 0 else f"tag{n:02d}") for n in range(TAGS)]
    tables["campaign"] = [
        (n + 1, "Spring Sale" if n == 0 else f"Campaign {n}", at0) for n in range(CAMPAIGNS + 1)
    ]
    statuses = [Status.CLOSED.value] * 12 + [Status.OPEN.value] * 5 + [Status.PENDING.value] * 3
    per = max(1, messages // max(conversations, 1))
    message_id = 0
    for n in range(conversations):
        first, last, company = (rng.choice(names.split()) for names in (FIRST, LAST, COMPANY))
        age = timedelta(minutes=int(rng.expovariate(1 / (60 * 24 * 60))))  # a year, recent-heavy
        active = NOW - min(age, timedelta(days=365))
        created = active - timedelta(days=rng.randint(0, 30))
        campaign = rng.randint(1, CAMPAIGNS + 1) if rng.random() < 0.6 else None
        tables["lead"].append(
            (n + 1, f"{first} {last}", f"{first}.{last}{n}@{company}.com".lower(), f"{company} Ltd", campaign,
             stamp(created, sqlite))
        )  # fmt: skip
        assignee = rng.randint(1, REPS) if rng.random() < 0.7 else None
        tables["conversation"].append(
            (n + 1, n + 1, "whatsapp", "BENCH", f"1555{n:08d}", rng.choice(statuses),
             rng.choice(["active", "paused", "manual"]), assignee, campaign, CHANNELS[n % 3],
             f"1600000000.{n:06d}", rng.randint(0, 3), stamp(active, sqlite), stamp(created, sqlite), 1)
        )  # fmt: skip
        for tag in rng.sample(range(1, TAGS + 1), rng.choice([0, 0, 1, 1, 2, 3])):
            tables["conversation_tag"].append((n + 1, tag))
        count = per if n < conversations - 1 else max(per, messages - message_id)
        for m in range(count):
            message_id += 1
            direction, author = [
                ("inbound", "lead"),
                ("outbound", "member"),
                ("outbound", "ai"),
                ("note", "member"),
            ][m % 4]
            said = " ".join(rng.choices(words, weights, k=rng.randint(4, 16)))
            at = stamp(created + (active - created) * (m + 1) / count, sqlite)
            tables["message"].append(
                (message_id, n + 1, "whatsapp", direction, author, "text", said, "[]", 0, at)
            )  # fmt: skip
    return tables


COLUMNS = {
    "member": "id, slack_user_id, name, role, notify_on_assign, notify_on_message, created_at",
    "tag": "id, name",
    "campaign": "id, name, created_at",
    "lead": "id, name, email, company, campaign_id, created_at",
    "conversation": (
        "id, lead_id, channel, channel_account, provider_thread_id, status, ai_mode, assignee_id, "
        "campaign_id, slack_channel, slack_thread_ts, unread_count, last_activity_at, created_at, version"
    ),
    "conversation_tag": "conversation_id, tag_id",
    "message": (
        "id, conversation_id, channel, direction, author, kind, text, attachments, parts_sent, created_at"
    ),
}


def load(url: str, tables: dict[str, list[tuple[Any, ...]]]) -> None:
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        with connection:
            for table, columns in COLUMNS.items():
                marks = ", ".join("?" for _ in columns.split(","))
                insert = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 (our own names)
                connection.executemany(insert, tables[table])
        connection.close()
        return
    import psycopg

    plain_url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain_url) as connection, connection.cursor() as cursor:
        for table, columns in COLUMNS.items():
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in tables[table]:
                    copy.write_row(row)
        for table in COLUMNS.keys() - {"conversation_tag"}:  # COPY with ids leaves sequences behind
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")  # noqa: S608
        cursor.execute("ANALYZE")


def queries(tables: dict[str, list[tuple[Any, ...]]]) -> dict[str, str]:
    """The `/leads` variants measured, named by what they exercise."""
    rng = random.Random(11)
    words = vocabulary(random.Random(7))
    lead = rng.choice(tables["lead"])
    return {
        "all (no filter)": "",
        "mine": "mine",
        "unassigned": "unassigned",
        "closed": "closed",
        "tag": "tag:vip",
        "campaign": 'campaign:"Spring Sale"',
        "mode + period": "mode:ai period:week",
        "common word": "pricing",
        "rare word": words[-7],
        "two words": "demo meeting",
        "name": str(lead[1]).split()[1],
        "company": "umbrella",
        "email fragment": str(lead[2]).split("@")[0],
        "mine tag word": "mine tag:vip pricing",
        "closed name word": f"closed {str(lead[1]).split()[0]} quote",
    }


def measure(url: str, variants: dict[str, str], runs: int) -> tuple[dict[str, list[float]], list[float]]:
    db = Database(url)
    reader = 1  # U0REP00
    timings: dict[str, list[float]] = {}
    for name, command in variants.items():
        request = parse(command)
        assert isinstance(request, ListRequest)
        figures = []
        for run in range(runs + 1):
            started = time.perf_counter()
            request = parse(command)
            assert isinstance(request, ListRequest)
            since = request.lead_filter.period.since(NOW, UTC)
            with db.sessions() as session:
                page = search_leads(
                    session, request.lead_filter, channels=VISIBLE, member_id=reader, since=since
                )
            build_leads_list(page, command_text=command, empty="none")
            if run:  # the first one warms the caches
                figures.append(time.perf_counter() - started)
        timings[name] = figures
    floor = []
    for run in range(runs + 1):
        started = time.perf_counter()
        with db.sessions() as session:
            list(
                session.scalars(
                    select(Conversation.id)
                    .where(Conversation.status.in_((Status.OPEN, Status.PENDING)))
                    .order_by(Conversation.last_activity_at.desc())
                    .limit(10)
                )
            )
        if run:
            floor.append(time.perf_counter() - started)
    db.dispose()
    return timings, floor


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "postgres":
        with _common.fresh_postgres() as url:
            yield _common.sqlalchemy_url(url)
    else:
        yield f"sqlite:///{workdir / 'search.db'}"


def bench(kind: str, conversations: int, messages: int, runs: int, workdir: Path) -> None:
    print(f"\n{kind}: {conversations:,} conversations, {messages:,} messages")
    with database(kind, workdir) as url:
        db = Database(url)
        migrate.upgrade(db.engine, "0005")
        started = time.perf_counter()
        tables = generate(conversations, messages, sqlite=kind == "sqlite")
        generated = time.perf_counter() - started
        started = time.perf_counter()
        load(url, tables)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        migrate.upgrade(db.engine)
        indexed = time.perf_counter() - started
        db.dispose()
        print(
            f"  rows generated in {generated:.1f} s, loaded in {loaded:.1f} s; migration 0006 {indexed:.1f} s"
        )
        variants = queries(tables)
        del tables
        timings, floor = measure(url, variants, runs)
    every = [figure for figures in timings.values() for figure in figures]
    for name, figures in timings.items():
        p50, p95 = percentile(figures, 50) * 1000, percentile(figures, 95) * 1000
        print(f"  {name:<18} {variants[name]!r:<30} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    p50, p95 = percentile(every, 50) * 1000, percentile(every, 95) * 1000
    floor50 = percentile(floor, 50) * 1000
    print(f"  all variants       p50 {p50:.1f} ms   p95 {p95:.1f} ms   (n={len(every)})")
    print(f"  floor              p50 {floor50:.2f} ms (ten ids by last activity, from the index)")
    print(f"  ratio              p50 {p50 / floor50:.1f}× the floor")
    print(f"  target             p95 ≤ {TARGET_P95_MS:.0f} ms: {verdict(p95 <= TARGET_P95_MS)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["both", "postgres", "sqlite"], default="both")
    parser.add_argument("--conversations", type=int, default=100_000, help="on PostgreSQL; SQLite a tenth")
    parser.add_argument("--messages", type=int, default=1_000_000, help="on PostgreSQL; SQLite a tenth")
    parser.add_argument("--runs", type=int, default=20, help="measured runs per /leads variant")
    args = parser.parse_args()
    print(f"machine  {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        if args.database in {"both", "postgres"}:
            bench("postgres", args.conversations, args.messages, args.runs, Path(tmp))
        if args.database in {"both", "sqlite"}:
            bench("sqlite", args.conversations // 10, args.messages // 10, args.runs, Path(tmp))


if __name__ == "__main__":
    main()
