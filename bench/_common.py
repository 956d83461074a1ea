"""What the benchmark scripts share: the machine's description, percentiles, throw-away PostgreSQL
databases and Redis indexes, the Slack and Graph stand-ins, the environment a Threadline process needs,
its floor server (bench/_floor.py), Slack's request signature, and the resident memory of a process tree.

Importing this module puts the repository root on `sys.path`, so the scripts can use the test stand-ins
(`tests.standins`, `tests.e2e.harness`) when run as `.venv/bin/python bench/NAME.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
import re
import subprocess
import sys
import threading
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
    free_port,
)
from tests.standins import meta_webhooks as meta  # noqa: E402
from tests.standins.graph_api import GraphStandIn  # noqa: E402
from tests.standins.slack_api import SlackStandIn  # noqa: E402

PYTHON = sys.executable
POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1/test")
REDIS_BASE_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
REP = "U0ANA"  # a full member of the channel, who replies in threads
SLACK_LIMIT = 1.0  # chat.postMessage per second per channel: Slack's published limit
SLACK_BURST = 5  # the burst the app assumes (Slack publishes none); the stand-in's when its limit is on
WEB_RSS_TARGET_MB = 150.0  # the target for the web process, resident


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


@contextmanager
def runtime_settings(runtime: str, workdir: Path, redis_index: int) -> Iterator[dict[str, str]]:
    """DATABASE_URL (and REDIS_URL) for a runtime: `embedded` is a SQLite file in `workdir` (the worker
    in process); `celery` a fresh PostgreSQL database and a flushed Redis index (a Celery worker)."""
    if runtime == "embedded":
        yield {"DATABASE_URL": f"sqlite:///{workdir / 'threadline.db'}"}
        return
    with fresh_postgres() as url, flushed_redis(redis_index) as redis_url:
        yield {"DATABASE_URL": url, "REDIS_URL": redis_url}


def slack_signature(secret: str, body: bytes, timestamp: str) -> str:
    """X-Slack-Signature for `body` sent at `timestamp`, as Slack computes it (v0)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_headers(secret: str, body: bytes, content_type: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(secret, body, timestamp),
    }


@contextmanager
def floor_server(*args: str) -> Iterator[str]:
    """bench/_floor.py on a free port with these arguments; yields its base URL."""
    port = free_port()
    process = subprocess.Popen([PYTHON, str(ROOT / "bench" / "_floor.py"), "--port", str(port), *args])
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


# --- resident memory --------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    """VmRSS of a process in MB (MiB), from /proc; None once it is gone."""
    with suppress(OSError):
        found = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
        if found:
            return int(found.group(1)) / 1024
    return None


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, parents first."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        found.append(current)
        with suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                queue += [int(child) for child in (task / "children").read_text().split()]
    return found


def process_label(pid: int, root: int) -> str:
    """What a process of a Threadline tree is: `web` (`threadline run`/`web`; with the embedded worker in
    it when there is no Celery), `worker` (`threadline worker`, Celery), or its command line."""
    command = _threadline_command(pid)
    if command in ("run", "web"):
        return f"web (threadline {command})" if pid == root else f"threadline {command} [{pid}]"
    if command == "worker":
        parent = _parent(pid)
        if parent is not None and _threadline_command(parent) == "worker":
            return f"worker's fork (Celery beat) [{pid}]"
        return "worker (threadline worker)"
    with suppress(OSError):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        return " ".join(a for a in argv if a)[:40] + f" [{pid}]"
    return f"[{pid}]"


def _threadline_command(pid: int) -> str | None:
    """`run`, `web`, `worker`… for a `python -m app.cli COMMAND` process."""
    with suppress(OSError):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        if "app.cli" in argv[:-1]:
            return argv[argv.index("app.cli") + 1]
    return None


def _parent(pid: int) -> int | None:
    with suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])  # after the command name: state, then ppid
    return None


class MemoryWatch:
    """Samples the resident memory of a process and its descendants every `interval` s, in a thread.

    `now()` is the current figure of each process, `settled()` the figure at rest once start-up is over;
    `peaks_now()` the highest seen since `reset_peaks()`.
    A worker's forked children (Celery's beat) are shown on their own.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval = pid, interval
        self.peaks: dict[str, float] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, name="rss", daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def now(self) -> dict[str, float]:
        sizes = {}
        for pid in process_tree(self.pid):
            size = rss_mb(pid)
            if size is not None:
                label = process_label(pid, self.pid)
                sizes[label if label not in sizes else f"{label} [{pid}]"] = size
        return sizes

    def settled(self, timeout: float = 30.0) -> dict[str, float]:
        """The figures once the tree has settled after start-up (the same processes, and no process
        changing by more than 1 MB, over 2 s), or after `timeout`: at rest."""
        deadline = time.monotonic() + timeout
        before = self.now()
        while time.monotonic() < deadline:
            time.sleep(2.0)  # the interval over which "settled" is judged
            current = self.now()
            if current.keys() == before.keys() and all(abs(current[k] - before[k]) < 1 for k in current):
                return current
            before = current
        return before

    def reset_peaks(self) -> None:
        with self._guard:
            self.peaks = {}

    def peaks_now(self) -> dict[str, float]:
        self._sample()
        with self._guard:
            return dict(self.peaks)

    def _sample(self) -> None:
        sizes = self.now()
        with self._guard:
            for label, size in sizes.items():
                self.peaks[label] = max(size, self.peaks.get(label, 0.0))

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()


def print_memory(rest: dict[str, float], peaks: dict[str, float], load: str) -> None:
    """Resident memory per process (a Markdown table), at rest and at its peak under `load`; the web
    process against the issue's target."""
    print(f"| process | at rest MB | peak MB | target: web < {WEB_RSS_TARGET_MB:.0f} MB |")
    print("|---|---:|---:|---|")
    for label in sorted(rest.keys() | peaks.keys(), key=lambda name: (not name.startswith("web"), name)):
        at_rest, peak = rest.get(label, float("nan")), peaks.get(label, float("nan"))
        is_web = label.startswith("web")
        target = verdict(max(at_rest, peak) < WEB_RSS_TARGET_MB) if is_web else ""
        print(f"| {label} | {at_rest:.1f} | {peak:.1f} | {target} |")
    print(f"(VmRSS from /proc, sampled every 0.2 s; peak during {load})")
