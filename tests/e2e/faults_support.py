"""What the fault tests need besides the app: processes to kill and restart, services of their own to
stop (Redis, a PostgreSQL cluster), and stand-ins that can hold a call's answer until the caller dies.

A held call has taken effect — Slack stored the post, Graph took the message — but its answer is kept
back, so the worker that made it is killed with the outcome unknown to it: the one window where a
retry could repeat a post or a send.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from aiohttp import web

from tests.conftest import IN_CI, ROOT
from tests.e2e.conftest import running_graph, running_slack
from tests.e2e.harness import free_port
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

Match = Callable[[web.Request, bytes], bool]

# --- stand-ins that hold an answer ---------------------------------------------------------------------


class Holds:
    """Mixed into a stand-in: the next request matching `hold(match)` takes effect as usual, but its
    answer waits until `release()` — the caller is meant to die in between."""

    changed: threading.Condition
    _hold: Match | None = None
    _waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]
    held: int = 0

    def hold(self, match: Match) -> None:
        with self.changed:
            self._hold = match

    def release(self) -> None:
        with self.changed:
            self._hold = None
            waiting, self._waiting = getattr(self, "_waiting", []), []
        for loop, answer in waiting:
            loop.call_soon_threadsafe(answer.set)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        response: web.StreamResponse = await super()._handle(request)  # type: ignore[misc]
        raw = await request.read()  # aiohttp keeps the body: the same bytes the stand-in read
        answer = asyncio.Event()
        with self.changed:
            holding = self._hold is not None and self._hold(request, raw)
            if holding:
                self._hold = None
                self.held += 1
                self._waiting = [*getattr(self, "_waiting", []), (asyncio.get_running_loop(), answer)]
                self.changed.notify_all()
        if holding:
            await answer.wait()
        return response

    def stop(self) -> None:
        self.release()  # a held answer would keep the server's shutdown waiting
        super().stop()  # type: ignore[misc]


class HoldingSlack(Holds, SlackStandIn):
    pass


class HoldingGraph(Holds, GraphStandIn):
    pass


def thread_post(request: web.Request, raw: bytes) -> bool:
    """chat.postMessage into a thread (an entry, not a card)."""
    return request.match_info.get("method") == "chat.postMessage" and b"thread_ts" in raw


def whatsapp_send(request: web.Request, _raw: bytes) -> bool:
    return request.method == "POST" and request.path.endswith("/messages")


@contextmanager
def holding_slack() -> Iterator[HoldingSlack]:
    with running_slack(HoldingSlack) as standin:
        assert isinstance(standin, HoldingSlack)
        yield standin


@contextmanager
def holding_graph() -> Iterator[HoldingGraph]:
    with running_graph(HoldingGraph) as standin:
        assert isinstance(standin, HoldingGraph)
        yield standin


# --- processes -----------------------------------------------------------------------------------------


def cli(env: dict[str, str], *args: str, log: Path, group: bool = False) -> subprocess.Popen[bytes]:
    """`threadline ARGS` in a process of its own, its output appended to `log`; with `group`, the
    leader of a process group, so `kill` takes its children too (a Celery worker's beat is one)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=env.get("THREADLINE_TEST_CWD"),
            start_new_session=group,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def kill(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL, to the process group it leads (as when its machine or container dies): no handler
    runs, no lease is given back, nothing is flushed."""
    assert process is not None and process.poll() is None, "the process to kill is not running"
    if _leads_group(process):
        os.killpg(process.pid, signal.SIGKILL)
    else:
        process.kill()
    process.wait()


def _leads_group(process: subprocess.Popen[bytes]) -> bool:
    try:
        return os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return False


@pytest.fixture(name="private_redis")
def private_redis_fixture() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    """A Redis of this test's own (the shared one's Celery database is every e2e test's), so it can be
    stopped and started again."""
    port = free_port()
    servers: list[subprocess.Popen[bytes]] = []
    yield port, servers
    for server in servers:
        stop(server)


def start_redis(port: int, servers: list[subprocess.Popen[bytes]]) -> None:
    servers.append(
        subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.02)  # polling for readiness
    raise AssertionError("private redis did not start")


def wait_until(condition: Callable[[], object], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)  # polling a condition with a deadline


# --- a PostgreSQL cluster of the test's own ---------------------------------------------------------------


class PrivatePostgres:
    """A throw-away cluster (initdb as the `postgres` system user) on a free port, which a test may stop
    and start: the shared server on 5432 serves the other tests and is never restarted."""

    def __init__(self) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        self.bin = Path(binaries[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="threadline-pg-"))  # not under tmp_path: root-only
        self.data = self.root / "data"
        self.port = free_port()
        shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(args[:2])} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        self._as_postgres(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-o", options,
            "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """A fast shutdown, as a restart or a failover does it: every connection is cut."""
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
             "immediate", "stop"],
            capture_output=True, check=False,
        )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


def postgres_problem() -> str | None:
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return "PostgreSQL's server binaries (initdb) are not installed"
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return "a private PostgreSQL cluster is made as root through runuser"
    return None


@pytest.fixture(name="private_postgres")
def private_postgres_fixture() -> Iterator[PrivatePostgres]:
    problem = postgres_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"a private PostgreSQL is needed in CI: {problem}", pytrace=False)
        pytest.skip(problem)
    cluster = PrivatePostgres()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
