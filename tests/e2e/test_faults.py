"""Process faults, with real processes: a worker SIGKILLed in the middle of a Slack post and of a send to
a lead, Redis stopped while leads keep writing on every channel, PostgreSQL restarted under traffic.

Each test counts what went in (leads' messages through the real webhooks and the real mail server, the
reps' replies as signed Slack events) and what came out (thread entries in the Slack stand-in, sends the
providers received) and asserts that nothing was lost and nothing doubled: exact counts, each text once,
in order where order is promised. Provider faults (Slack 429/5xx, provider errors) are elsewhere.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.blocks import ids
from core.delivery import UNKNOWN_OUTCOME
from core.models import DeliveryStatus, Direction, Message
from tests.e2e.conftest import SECRETS, app_environment
from tests.e2e.faults_support import (
    cli,
    holding_graph,
    holding_slack,
    kill,
    private_redis_fixture,  # noqa: F401 (a fixture)
    start_redis,
    stop,
    thread_post,
    whatsapp_send,
)
from tests.e2e.harness import CHANNEL, AppProcess
from tests.e2e.test_runtime import card_for, entries, rep_replies
from tests.e2e.test_whatsapp_slack import lead_writes
from tests.standins.graph_api import GraphStandIn

LEASE_SECONDS = "3"  # a dead worker's claim frees after this; 60 s in production, the rule is the same
JANE, TOM = "15551234567", "15557654321"


@dataclass
class Deployment:
    """The app as a runtime runs it: `web` takes the requests; the worker is what a SIGKILL hits —
    the Celery worker process, or (embedded) the whole `threadline run`, worker threads and all."""

    web: AppProcess
    env: dict[str, str]
    log: Path
    worker: subprocess.Popen[bytes] | None = None

    @property
    def embedded(self) -> bool:
        return "REDIS_URL" not in self.env

    def kill_worker(self) -> None:
        kill(self.web.process if self.embedded else self.worker)

    def start_worker(self) -> None:
        if self.embedded:
            self.web.start()  # the same database file, the same port
        else:
            self.worker = cli(self.env, "worker", log=self.log, group=True)

    def logs(self) -> str:
        return self.web.logs() + (self.log.read_text(errors="replace") if self.log.exists() else "")


@contextmanager
def deployed(env: dict[str, str], tmp_path: Path) -> Iterator[Deployment]:
    run = Deployment(
        AppProcess(
            env=env, log_path=tmp_path / "web.log", command="run" if "REDIS_URL" not in env else "web"
        ),
        env,
        tmp_path / "worker.log",
    )
    if not run.embedded:
        migrate = cli(env, "migrate", log=tmp_path / "migrate.log")
        assert migrate.wait(60) == 0, (tmp_path / "migrate.log").read_text()
        run.start_worker()
    run.web.start()
    try:
        yield run
    finally:
        run.web.stop()
        if run.worker is not None and run.worker.poll() is None:
            stop(run.worker)
    logs = run.logs()
    assert "Traceback" not in logs, logs[-5000:]
    assert [name for name, secret in SECRETS.items() if secret in logs] == [], "secrets in the logs"


def sent_to(graph: GraphStandIn, wa_id: str) -> list[str]:
    return [s.body["text"]["body"] for s in graph.sent if s.to == wa_id]


@pytest.mark.parametrize("runtime_env", ["embedded-sqlite", "celery-postgres"], indirect=True)
def test_a_worker_killed_mid_post_and_mid_send_posts_once_and_never_resends_blind(
    runtime_env: dict[str, str], private_redis: tuple[int, list[subprocess.Popen[bytes]]], tmp_path: Path
):
    with holding_slack() as slack, holding_graph() as graph:
        env = app_environment(runtime_env, slack, graph, tmp_path) | {
            "THREADLINE_LEASE_SECONDS": LEASE_SECONDS
        }
        if "REDIS_URL" in env:  # a Redis of its own: the shared one's Celery database is every e2e test's
            port, servers = private_redis
            start_redis(port, servers)
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        with deployed(env, tmp_path) as run:
            # 1. Killed while Slack stores the thread entry: the post landed, its ts was never recorded.
            slack.hold(thread_post)
            lead_writes(run.web, "hello", message_id="wamid.k1", wa_id=JANE, name="Jane")
            slack.wait_for(lambda: slack.held == 1, timeout=30)
            run.kill_worker()
            slack.release()
            run.start_worker()
            lead_writes(run.web, "after the restart", message_id="wamid.k2", wa_id=JANE, name="Jane")
            lead_writes(run.web, "hi from Tom", message_id="wamid.t1", wa_id=TOM, name="Tom")
            jane, tom = card_for(slack, "Jane", timeout=60), card_for(slack, "Tom", timeout=60)
            slack.wait_for(lambda: len(entries(slack, jane)) >= 2 and entries(slack, tom), timeout=60)
            # The post whose answer was lost is found by its metadata, not posted again.
            assert entries(slack, jane) == ["hello", "after the restart"]
            assert entries(slack, tom) == ["hi from Tom"]
            assert len(slack.messages(CHANNEL)) == 2  # one card each

            # 2. Killed while Graph takes a reply: the lead may have it, nobody knows. Another reply waits
            # behind it in the same conversation; a third goes to another lead.
            graph.hold(whatsapp_send)
            rep_replies(run.web, slack, jane, "first reply")
            graph.wait_for(lambda: graph.held == 1, timeout=30)
            rep_replies(run.web, slack, jane, "second reply")
            rep_replies(run.web, slack, tom, "reply to Tom")
            run.kill_worker()
            graph.release()
            run.start_worker()

            def unknown_outcome_notices() -> list[dict[str, object]]:
                return [m for m in slack.replies(CHANNEL, jane) if "may or may not" in str(m["text"])]

            slack.wait_for(lambda: unknown_outcome_notices() != [], timeout=60)
            graph.wait_for(lambda: len(graph.sent) == 3, timeout=60)
            assert sent_to(graph, JANE) == ["first reply", "second reply"]  # in order, the first not again
            assert sent_to(graph, TOM) == ["reply to Tom"]
            with run.web.database() as db, db.sessions() as session:
                replies = session.execute(
                    select(Message.text, Message.delivery_status, Message.delivery_error)
                    .where(Message.direction == Direction.OUTBOUND)
                    .order_by(Message.id)
                ).all()
            assert [(r.text, r.delivery_status) for r in replies] == [
                ("first reply", DeliveryStatus.FAILED),
                ("second reply", DeliveryStatus.SENT),
                ("reply to Tom", DeliveryStatus.SENT),
            ]
            assert replies[0].delivery_error == UNKNOWN_OUTCOME
            [notice] = unknown_outcome_notices()
            assert ids.RETRY_DELIVERY in str(notice["blocks"])  # the rep decides whether to send it again
        assert len(graph.sent) == 3
