"""What the benchmark scripts share: the machine's description, percentiles, throw-away PostgreSQL
databases and Redis indexes, the Slack and Graph stand-ins, and the environment a Threadline process needs.

Importing this module puts the repository root on `sys.path`, so the scripts can use the test stand-ins
(`tests.standins`, `tests.e2e.harness`) when run as `.venv/bin/python bench/NAME.py`.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from tests.conftest import SPECS  # noqa: E402
from tests.e2e.conftest import app_environment  # noqa: E402
from tests.e2e.harness import (  # noqa: E402
    BOT_TOKEN,
    CHANNEL,
    PHONE_NUMBER_ID,
    WHATSAPP_TOKEN,
)
from tests.standins import meta_webhooks as meta  # noqa: E402
from tests.standins.graph_api import GraphStandIn  # noqa: E402
from tests.standins.slack_api import SlackStandIn  # noqa: E402

PYTHON = sys.executable
POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1/test")
REDIS_BASE_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
REP = "U0ANA"  # a full member of the channel, who replies in threads


def machine() -> str:
    """`N cores, CPU model, Python x.y` — printed with every run, since figures mean little without it."""
    model = platform.processor() or "unknown CPU"
    with suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        if found:
            model = found.group(1).strip()
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; NaN when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def sqlalchemy_url(url: str) -> str:
    """Plain `postgresql://` as the app reads it (psycopg 3)."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@contextmanager
def fresh_postgres(admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[str]:
    """A new, empty database on the local server (`postgresql://…/bench_<hex>`), dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sqlalchemy_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def flushed_redis(index: int) -> Iterator[str]:
    """A Redis database index, flushed before and after use."""
    url = f"{REDIS_BASE_URL}/{index}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@contextmanager
def standins() -> Iterator[tuple[SlackStandIn, GraphStandIn]]:
    """The strict Slack and Graph stand-ins, with the leads channel and one rep in it."""
    slack = SlackStandIn(SPECS / "slack" / "methods", bot_token=BOT_TOKEN)
    graph = GraphStandIn(
        SPECS / "whatsapp" / "business-messaging-api_v23.0.yaml",
        access_token=WHATSAPP_TOKEN,
        phone_number_id=PHONE_NUMBER_ID,
    )
    slack.start()
    graph.start()
    slack.add_channel(CHANNEL, "leads")
    slack.add_user(REP, "ana", "Ana Lima", email="ana@example.com")
    try:
        yield slack, graph
    finally:
        slack.stop()
        graph.stop()


def app_env(slack: SlackStandIn, graph: GraphStandIn, workdir: Path, **settings: str) -> dict[str, str]:
    """Everything a `threadline` process needs, pointed at the stand-ins (the end-to-end tests' own
    environment), at the default sweep and a quiet log; `settings` add or override."""
    env = app_environment({}, slack, graph, workdir)
    env.pop("THREADLINE_SWEEP_SECONDS")  # the tests' fast sweep; benchmarks measure the default
    return {**env, "THREADLINE_LOG_LEVEL": "WARNING", **settings}


def lead_webhook(n: int, leads: int, message_id: str) -> bytes:
    """Message `n` of a benchmark: one text from one of `leads` leads, as Meta sends it."""
    lead = n % leads
    payload = meta.text_message(
        wa_id=f"1555{lead:07d}",
        name=f"Bench Lead {lead}",
        text=f"benchmark message {n}",
        message_id=message_id,
        phone_number_id=PHONE_NUMBER_ID,
    )
    return json.dumps(payload).encode()


def print_notes(notes: Sequence[str], what: str = "") -> None:
    for note in notes[:20]:
        print(f"  {note}")
    if len(notes) > 20:
        print(f"  … and {len(notes) - 20} more{what}")


def threadline(command: str, env: dict[str, str], cwd: Path) -> None:
    """Run a short `threadline COMMAND` (e.g. migrate) to completion; raise if it fails."""
    done = subprocess.run(
        [PYTHON, "-m", "app.cli", command], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"threadline {command} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Poll GET url until it answers 200 (the process must stay alive meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with suppress(OSError), urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 (loopback)
            if answer.status == 200:
                return
        time.sleep(0.05)  # polling for readiness
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


def log_problems(text_: str) -> list[str]:
    """Lines of an app log that say something went wrong (WARNING and worse, tracebacks)."""
    marks = ("WARNING", "ERROR", "CRITICAL", "Traceback")
    return [line for line in text_.splitlines() if any(mark in line for mark in marks)]


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"
