"""Benchmark: signed WhatsApp webhooks over real HTTP into the real web process(es), against a floor.

Prints figures and ratios; asserts nothing.

    .venv/bin/python bench/webhooks.py [--mode postgres|embedded|both] [--requests 3000]
        [--concurrency 32] [--rate 500] [--rate-seconds 5] [--leads 200]

postgres: a fresh PostgreSQL database, `threadline migrate`, then two `threadline web` processes (REDIS_URL
on a flushed Redis index, no worker: acceptance only), the load spread across both. embedded:
`threadline run` on a SQLite file (REDIS_URL unset; its in-process worker drains the inbox meanwhile).
The floor, measured in the same run on the same kind of database, is bench/_floor.py: a bare aiohttp
server that checks the same signature and stores the raw body with one insert (two of them in the
postgres mode, as many as the app's web processes). Each target gets (a) saturation: N requests at a
fixed concurrency -> accepted/s, p50, p99; (b) an open-loop fixed rate (sends scheduled at the rate
whatever the answers; latency counted from the scheduled time) -> p50, p99, non-200 answers.
The load generator runs in this process, on the same cores as the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import _common
import aiohttp
import redis
from _common import PYTHON, ROOT, lead_webhook, log_problems, machine, percentile, print_notes, verdict
from sqlalchemy import create_engine, text

from tests.e2e.harness import WHATSAPP_SECRET, AppProcess, free_port
from tests.standins import meta_webhooks as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

TARGET_ACCEPTED = 1000.0  # webhooks/s (the target)
TARGET_P99_MS = 50.0  # at 500 webhooks/s
WARMUP = 100
REDIS_INDEX = 9
BY_STATUS = "SELECT status, count(*) FROM {table} GROUP BY status"
Body = tuple[bytes, str]  # raw body, its X-Hub-Signature-256


class Bodies:
    """Signed webhook bodies, each one different (unique message ids: nothing dedupes)."""

    def __init__(self, leads: int) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.leads = leads
        self.counter = itertools.count()

    def take(self, count: int) -> list[Body]:
        bodies = []
        for n in itertools.islice(self.counter, count):
            raw = lead_webhook(n, self.leads, f"wamid.bench.{self.run}.{n}")
            bodies.append((raw, meta.sign(WHATSAPP_SECRET, raw)))
        return bodies


@dataclass
class Phase:
    sent: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, every answered request
    statuses: Counter[str] = field(default_factory=Counter)  # "200", "500", "error:TimeoutError"…

    @property
    def ok(self) -> int:
        return self.statuses["200"]

    @property
    def not_ok(self) -> int:
        return self.sent - self.ok

    @property
    def accepted_per_second(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


@dataclass
class Result:
    name: str
    saturation: Phase
    fixed: Phase
    stored: int  # rows in the target's table afterwards
    accepted: int  # 200 answers, warm-up included
    notes: list[str] = field(default_factory=list)


async def _post(session: aiohttp.ClientSession, url: str, body: Body, phase: Phase, since: float) -> None:
    raw, signature = body
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    try:
        async with session.post(url, data=raw, headers=headers) as answer:
            await answer.read()
            phase.statuses[str(answer.status)] += 1
    except (aiohttp.ClientError, TimeoutError) as exc:
        phase.statuses[f"error:{type(exc).__name__}"] += 1
        return
    phase.latencies.append(time.perf_counter() - since)


async def saturate(
    urls: list[str], bodies: list[Body], concurrency: int, max_seconds: float = float("inf")
) -> Phase:
    """Closed loop: `concurrency` clients, each sending its next request as soon as the last is answered,
    until the bodies run out or `max_seconds` have passed (then no new request starts)."""
    phase = Phase()
    numbered = iter(enumerate(bodies))
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)

    async def client(session: aiohttp.ClientSession) -> None:
        for n, body in numbered:
            if time.perf_counter() - started > max_seconds:
                return
            phase.sent += 1
            await _post(session, urls[n % len(urls)], body, phase, time.perf_counter())

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        phase.elapsed = time.perf_counter() - started
    return phase


async def fixed_rate(urls: list[str], bodies: list[Body], rate: float) -> Phase:
    """Open loop: request n is sent at start + n/rate, answered or not; latency counts from that time."""
    phase = Phase(sent=len(bodies))
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=2000)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        start = time.perf_counter() + 0.05
        for n, body in enumerate(bodies):
            scheduled = start + n / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(session, urls[n % len(urls)], body, phase, scheduled)))
        await asyncio.gather(*tasks)
        phase.elapsed = time.perf_counter() - start
    return phase


def measure(name: str, urls: list[str], bodies: Bodies, args: argparse.Namespace) -> Result:
    warmup = asyncio.run(saturate(urls, bodies.take(WARMUP), 8))
    saturation = asyncio.run(
        saturate(urls, bodies.take(args.requests), args.concurrency, args.saturation_seconds)
    )
    fixed = asyncio.run(fixed_rate(urls, bodies.take(int(args.rate * args.rate_seconds)), args.rate))
    accepted = warmup.ok + saturation.ok + fixed.ok
    return Result(name, saturation, fixed, stored=0, accepted=accepted)


# --- the floor ---------------------------------------------------------------------------------------------


@contextmanager
def floors(database: str, count: int) -> Iterator[list[str]]:
    """`count` floor servers (bench/_floor.py) on free ports; yields their webhook URLs."""
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(count):
            port = free_port()
            argv = [PYTHON, str(ROOT / "bench" / "_floor.py"), "--port", str(port)]
            argv += ["--secret", WHATSAPP_SECRET, "--database", database]
            process = subprocess.Popen(argv)
            processes.append(process)
            _common.wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
            urls.append(f"http://127.0.0.1:{port}/webhooks/whatsapp")
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


# --- the modes ---------------------------------------------------------------------------------------------


def postgres_mode(
    args: argparse.Namespace, slack: SlackStandIn, graph: GraphStandIn, workdir: Path
) -> list[Result]:
    bodies = Bodies(args.leads)
    with _common.fresh_postgres() as url, _common.flushed_redis(REDIS_INDEX) as redis_url:
        engine = create_engine(_common.sqlalchemy_url(url))

        def count(table: str) -> int:
            with engine.connect() as connection:
                return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608

        with engine.begin() as connection:
            connection.execute(
                text(
                    "CREATE TABLE floor_inbox (id bigserial PRIMARY KEY, body bytea NOT NULL,"
                    " received_at timestamptz NOT NULL DEFAULT now())"
                )
            )
        with floors(url, 2) as urls:
            floor = measure("postgres: floor, 2 × bare aiohttp", urls, bodies, args)
        floor.stored = count("floor_inbox")

        env = _common.app_env(slack, graph, workdir, DATABASE_URL=url, REDIS_URL=redis_url)
        _common.threadline("migrate", env, workdir)
        apps = [AppProcess(env=env, log_path=workdir / f"web-{n}.log", command="web") for n in range(2)]
        try:
            for app in apps:
                app.start()
            result = measure(
                "postgres: 2 × threadline web", [f"{app.url}/webhooks/whatsapp" for app in apps], bodies, args
            )
        finally:
            for app in apps:
                app.stop()
        result.stored = count("inbox")
        with engine.connect() as connection:
            by_status = text("SELECT status, count(*) FROM inbox GROUP BY status")
            states: dict[str, int] = {row[0]: row[1] for row in connection.execute(by_status)}
        nudges = sum(
            int(redis.Redis.from_url(redis_url).llen(queue)) for queue in ("threadline.urgent", "threadline")
        )
        result.notes.append(
            f"no worker ran (acceptance only): inbox {states}; {nudges} inbox nudges waiting in Redis"
            f" for {result.accepted} webhooks"
        )
        for app in apps:
            result.notes += [f"{app.log_path.name}: {line}" for line in log_problems(app.logs())]
        engine.dispose()
    return [floor, result]


def embedded_mode(
    args: argparse.Namespace, slack: SlackStandIn, graph: GraphStandIn, workdir: Path
) -> list[Result]:
    bodies = Bodies(args.leads)
    floor_db = workdir / "floor.db"
    with sqlite3.connect(floor_db) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE floor_inbox (id INTEGER PRIMARY KEY, body BLOB NOT NULL, received_at TEXT NOT NULL)"
        )
    with floors(f"sqlite:///{floor_db}", 1) as urls:
        floor = measure("embedded: floor, bare aiohttp + SQLite", urls, bodies, args)
    with sqlite3.connect(floor_db) as connection:
        floor.stored = connection.execute("SELECT count(*) FROM floor_inbox").fetchone()[0]

    app_db = workdir / "threadline.db"
    env = _common.app_env(slack, graph, workdir, DATABASE_URL=f"sqlite:///{app_db}")
    app = AppProcess(env=env, log_path=workdir / "run.log", command="run")
    try:
        app.start()
        result = measure("embedded: threadline run (SQLite)", [f"{app.url}/webhooks/whatsapp"], bodies, args)
        with sqlite3.connect(app_db, timeout=30) as connection:
            states = dict(connection.execute(BY_STATUS.format(table="inbox")).fetchall())
            outbox = dict(connection.execute(BY_STATUS.format(table="outbox")).fetchall())
    finally:
        app.stop()
    result.stored = sum(states.values())
    result.notes.append(
        f"the embedded worker ran meanwhile: inbox {states}, outbox {outbox} when the load ended"
    )
    result.notes += [f"{app.log_path.name}: {line}" for line in log_problems(app.logs())]
    return [floor, result]


# --- the report --------------------------------------------------------------------------------------------


def report(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(f"machine        {machine()}")
    print(
        f"load           {args.requests} requests at {args.concurrency} concurrent (saturation, at most "
        f"{args.saturation_seconds:.0f} s), then "
        f"{args.rate:.0f}/s for {args.rate_seconds:.0f} s open-loop; {args.leads} leads; every body unique"
    )
    print(
        f"issue targets  ≥ {TARGET_ACCEPTED:,.0f} webhooks/s accepted; p99 ≤ {TARGET_P99_MS:.0f} ms "
        f"at {args.rate:.0f}/s"
    )
    print()
    header = (
        f"{'target':<40} {'accepted/s':>10} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'p50@rate':>9} {'p99@rate':>9} {'non-200@rate':>12} {'vs floor':>8}"
    )
    print(header)
    print("-" * len(header))
    floor: Result | None = None
    for result in results:
        is_floor = "floor" in result.name
        floor = result if is_floor else floor
        ratio = (
            ""
            if is_floor or floor is None
            else (f"{result.saturation.accepted_per_second / floor.saturation.accepted_per_second:.2f}×")
        )
        s, f = result.saturation, result.fixed
        print(
            f"{result.name:<40} {s.accepted_per_second:>10,.0f} {s.ms(50):>7.1f} {s.ms(99):>7.1f} "
            f"{f.ms(50):>9.1f} {f.ms(99):>9.1f} {f.not_ok:>12} {ratio:>8}"
        )
    print()
    for result in results:
        s, f = result.saturation, result.fixed
        print(f"{result.name}")
        print(
            f"  saturation: {s.ok}/{s.sent} answered 200 in {s.elapsed:.2f} s {dict(s.statuses)}"
            f"{' (stopped at --saturation-seconds)' if s.sent < args.requests else ''}; "
            f"fixed rate: {f.ok}/{f.sent} answered 200 {dict(f.statuses)}, p99.9 {f.ms(99.9):.1f} ms, "
            f"max {f.ms(100):.1f} ms"
        )
        print(f"  stored {result.stored} rows for {result.accepted} answers 200 (warm-up included)")
        if "floor" not in result.name:
            print(
                f"  targets: accepted/s {verdict(s.accepted_per_second >= TARGET_ACCEPTED)}, "
                f"p99 at {args.rate:.0f}/s {verdict(f.ms(99) <= TARGET_P99_MS and f.not_ok == 0)}"
            )
        print_notes(result.notes, " log lines")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=["postgres", "embedded", "both"], default="both")
    parser.add_argument("--requests", type=int, default=3000, help="saturation phase size (default 3000)")
    parser.add_argument("--concurrency", type=int, default=32, help="saturation clients (default 32)")
    parser.add_argument("--rate", type=float, default=500.0, help="fixed-rate requests/s (default 500)")
    parser.add_argument("--rate-seconds", type=float, default=5.0, help="fixed-rate phase length (default 5)")
    parser.add_argument(
        "--saturation-seconds",
        type=float,
        default=30.0,
        help="stop starting saturation requests after this long (default 30): a slow target ends early",
    )
    parser.add_argument("--logs", type=Path, help="copy the app processes' logs into this directory")
    parser.add_argument("--leads", type=int, default=200, help="distinct senders (default 200)")
    args = parser.parse_args()

    results: list[Result] = []
    with _common.standins() as (slack, graph), tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        if args.mode in ("postgres", "both"):
            workdir = Path(tmp) / "postgres"
            workdir.mkdir()
            results += postgres_mode(args, slack, graph, workdir)
        if args.mode in ("embedded", "both"):
            workdir = Path(tmp) / "embedded"
            workdir.mkdir()
            results += embedded_mode(args, slack, graph, workdir)
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            for log in Path(tmp).glob("*/*.log"):
                shutil.copy(log, args.logs / f"{log.parent.name}-{log.name}")
    report(results, args)


if __name__ == "__main__":
    main()
