"""The outbox runtime: work leaves only after commit, runs once, survives failures and lost nudges."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.worker import EmbeddedWorker
from core.db import Database
from core.inbox import InboxRunner
from core.models import Outbox, OutboxStatus, utcnow
from core.outbox import Job, JobKind, OutboxRunner
from tests.conftest import DispatchLog, handlers

PROBE = JobKind.NOTIFY_ASSIGNEE  # any kind: these tests give it their own handler


def add_job(db: Database, kind: JobKind = PROBE) -> int:
    with db.transaction() as session:
        row = Outbox(kind=kind, payload={"n": 1})
        session.add(row)
        session.flush()
        return row.id


def status_of(db: Database, outbox_id: int) -> Outbox:
    with db.sessions() as session:
        return session.get_one(Outbox, outbox_id)


def test_rows_are_handed_over_only_after_commit(db: Database, dispatched: DispatchLog):
    with pytest.raises(RuntimeError), db.transaction() as session:
        session.add(Outbox(kind=PROBE))
        session.flush()
        raise RuntimeError("the use-case failed after writing its outbox row")
    assert dispatched.ids == []

    outbox_id = add_job(db)
    assert dispatched.ids == [outbox_id]


def test_a_job_runs_once_and_is_marked_done(db: Database):
    seen: list[Job] = []
    runner = OutboxRunner(db, handlers({PROBE: seen.append}))
    outbox_id = add_job(db)

    assert runner.run(outbox_id) and not runner.run(outbox_id)
    assert [job.id for job in seen] == [outbox_id]
    assert status_of(db, outbox_id).status == OutboxStatus.DONE


def test_a_failing_delivery_is_retried_later_then_given_up(db: Database):
    def broken(job: Job) -> None:
        raise ConnectionError("provider unreachable")

    runner = OutboxRunner(db, handlers({JobKind.DELIVER: broken}))
    outbox_id = add_job(db, JobKind.DELIVER)
    runner.run(outbox_id)

    row = status_of(db, outbox_id)
    assert row.status == OutboxStatus.PENDING and row.attempts == 1
    assert "provider unreachable" in (row.last_error or "")
    assert row.next_attempt_at > utcnow()  # backing off, not hammering
    assert not runner.run(outbox_id)  # not due yet

    for _ in range(20):  # make it due each time, as the clock would
        with db.transaction() as session:
            session.execute(update(Outbox).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        if not runner.run(outbox_id):
            break
    row = status_of(db, outbox_id)
    assert row.status == OutboxStatus.FAILED and row.attempts == 8


def test_slack_work_never_gives_up_and_its_backoff_is_capped(db: Database):
    def slack_down(job: Job) -> None:
        raise ConnectionError("Slack unreachable")

    runner = OutboxRunner(db, handlers({PROBE: slack_down}), retry_cap=timedelta(seconds=30))
    outbox_id = add_job(db)
    for _ in range(20):  # far more than a delivery's attempts
        with db.transaction() as session:
            session.execute(update(Outbox).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        assert runner.run(outbox_id)
    row = status_of(db, outbox_id)
    assert row.status == OutboxStatus.PENDING and row.attempts == 20
    assert row.next_attempt_at <= utcnow() + timedelta(seconds=30)


def test_a_job_whose_worker_died_is_offered_again(db: Database):
    runner = OutboxRunner(db, handlers({PROBE: lambda job: None}))
    outbox_id = add_job(db)
    with db.transaction() as session:  # a worker claimed it, then vanished
        session.execute(
            update(Outbox).values(status=OutboxStatus.RUNNING, locked_until=utcnow() - timedelta(seconds=1))
        )
    assert outbox_id in [offer.id for offer in runner.due()]
    assert runner.run(outbox_id)
    assert status_of(db, outbox_id).status == OutboxStatus.DONE


def test_embedded_worker_runs_what_commits_and_what_was_left_pending(db: Database):
    done = threading.Event()
    ran: list[int] = []

    def handler(job: Job) -> None:
        ran.append(job.id)
        if len(ran) == 2:
            done.set()

    left_over = add_job(db)  # committed before the worker existed: only the sweep can find it
    worker = EmbeddedWorker(
        OutboxRunner(db, handlers({PROBE: handler})),
        InboxRunner(db, {}, ai_available=False),
        threads=2,
        sweep_seconds=0.05,
    )
    db.dispatch = worker.dispatch
    worker.start()
    try:
        fresh = add_job(db)
        assert done.wait(10), f"worker ran only {ran}"
    finally:
        worker.stop()
    assert sorted(ran) == sorted([left_over, fresh])


def test_a_lost_celery_nudge_loses_no_work(db: Database):
    from app.celery_app import CeleryDispatcher, configure

    configure("redis://127.0.0.1:1/0", sweep_seconds=5)  # nothing listens there: Redis is "down"
    dispatcher = CeleryDispatcher()
    db.dispatch = dispatcher
    outbox_id = add_job(db)  # commits at once; the nudge fails in the background and is logged

    runner = OutboxRunner(db, handlers({PROBE: lambda job: None}))
    assert outbox_id in [offer.id for offer in runner.due()]
    with db.sessions() as session:
        assert session.scalar(select(Outbox.status).where(Outbox.id == outbox_id)) == OutboxStatus.PENDING


def test_a_runner_without_a_handler_for_every_kind_refuses_to_start(db: Database):
    partial = {kind: (lambda job: None) for kind in JobKind if kind != JobKind.MIRROR}
    with pytest.raises(ValueError, match="mirror"):
        OutboxRunner(db, partial)


def test_the_real_container_has_a_handler_for_every_kind_that_can_be_queued(tmp_path):  # type: ignore[no-untyped-def]
    from app.container import build_container
    from core.settings import load_settings

    settings = load_settings(
        DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}",
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="secret",
        SLACK_CHANNEL="C0LEADS",
    )
    container = build_container(settings)
    try:
        assert set(container.runner.handlers) == set(JobKind)
    finally:
        container.close()


def test_a_supervised_child_that_exits_is_started_again(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    import sys
    import time

    from app.serve import Supervised

    marks = tmp_path / "starts"
    child = [sys.executable, "-c", f"open({str(marks)!r}, 'a').write('x')"]  # exits at once, each time
    monkeypatch.setattr(Supervised, "RESTART_PAUSE_SECONDS", 0.05)
    supervised = Supervised(child, name="probe")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not marks.exists() or len(marks.read_text()) < 3):
        time.sleep(0.05)  # polling for the restarts to happen
    supervised.stop()
    assert len(marks.read_text()) >= 3
    after_stop = len(marks.read_text())
    time.sleep(0.3)  # long enough for several restarts, had stop() not stopped them
    assert len(marks.read_text()) == after_stop


def test_work_of_a_kind_nobody_takes_any_more_is_failed_once_not_retried(db: Database):
    outbox_id = add_job(db, "retired_kind")  # type: ignore[arg-type]  # as an earlier version queued one
    runner = OutboxRunner(db, handlers({}))
    assert not runner.run(outbox_id)
    row = status_of(db, outbox_id)
    assert row.status == OutboxStatus.FAILED and row.last_error == "no handler for this kind"
    assert outbox_id not in [offer.id for offer in runner.due()]


def test_work_written_in_a_savepoint_leaves_only_when_the_whole_transaction_commits(
    db: Database, dispatched: DispatchLog
):
    with db.transaction() as session:
        with session.begin_nested():
            kept = Outbox(kind=PROBE)
            session.add(kept)
        assert dispatched.ids == [], "handed over before anyone else could see it"
        with pytest.raises(RuntimeError), session.begin_nested():
            session.add(Outbox(kind=PROBE))
            session.flush()
            raise RuntimeError("this part of the batch is parked")
    assert dispatched.ids == [kept.id]
