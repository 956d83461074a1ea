"""The outbox's schedule: leases that belong to someone, lanes that keep order, nothing repeated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update

from channels.whatsapp.outbound import TEXT_LIMIT, WhatsAppSender
from core.actions.common import Actor
from core.actions.inbound import do_record_delivery
from core.actions.members import do_register_member
from core.actions.replies import do_reply
from core.db import Database
from core.delivery import Deliverer
from core.errors import RetryableDelivery
from core.models import DeliveryStatus, Message, Outbox, OutboxStatus, utcnow
from core.outbox import Job, JobKind, OutboxRunner
from core.ports import DeliveryUpdate, Outbound, PartSent, SendReceipt, ignore_part
from tests.conftest import ROOT, handlers
from tests.integration.test_delivery import make_due, message, reply
from tests.integration.test_outbox import PROBE, add_job, status_of


def wait_until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)  # polling a condition, not waiting a fixed time


# --- leases ------------------------------------------------------------------------------------------


def test_a_job_outliving_its_first_lease_is_not_run_twice(db: Database):
    runs: list[int] = []
    release = threading.Event()

    def slow(job: Job) -> None:
        runs.append(job.id)
        release.wait(30)

    lease = timedelta(seconds=1)
    first = OutboxRunner(db, handlers({PROBE: slow}), lease=lease)
    second = OutboxRunner(db, handlers({PROBE: slow}), lease=lease)
    outbox_id = add_job(db)
    worker = threading.Thread(target=first.run, args=(outbox_id,))
    worker.start()
    wait_until(lambda: status_of(db, outbox_id).status == OutboxStatus.RUNNING)
    first_lease_ends = status_of(db, outbox_id).locked_until
    assert first_lease_ends is not None

    while utcnow() < first_lease_ends + 2 * lease:  # well past the lease it was first given
        assert not second.run(outbox_id), "a second worker ran a job whose worker is alive"
        time.sleep(0.05)
    release.set()
    worker.join(10)

    row = status_of(db, outbox_id)
    assert runs == [outbox_id] and row.status == OutboxStatus.DONE and row.attempts == 1


def test_a_worker_that_lost_its_lease_records_nothing(db: Database):
    taken_over = threading.Event()
    finished = threading.Event()

    def stalled_then_fails(job: Job) -> None:
        taken_over.wait(30)
        raise ConnectionError("too late anyway")

    stalled = OutboxRunner(db, handlers({PROBE: stalled_then_fails}))
    rescuer = OutboxRunner(db, handlers({PROBE: lambda job: finished.set()}))
    outbox_id = add_job(db)
    worker = threading.Thread(target=stalled.run, args=(outbox_id,))
    worker.start()
    wait_until(lambda: status_of(db, outbox_id).status == OutboxStatus.RUNNING)
    with db.transaction() as session:  # its lease ran out (the process froze, say)
        session.execute(update(Outbox).values(locked_until=utcnow() - timedelta(seconds=1)))

    assert rescuer.run(outbox_id) and finished.is_set()
    taken_over.set()
    worker.join(10)

    row = status_of(db, outbox_id)
    assert row.status == OutboxStatus.DONE and row.last_error is None and row.lease == 2


WORKER_THAT_DIES = """
import sys, time
from pathlib import Path
from core.db import Database
from core.outbox import JobKind, OutboxRunner
from tests.conftest import handlers

def hang(job):
    Path(sys.argv[2]).write_text("started")
    time.sleep(600)

OutboxRunner(Database(sys.argv[1]), handlers({JobKind.NOTIFY_ASSIGNEE: hang})).run(int(sys.argv[3]))
"""


def test_a_job_whose_worker_is_killed_mid_run_is_finished_once_by_another(db: Database, tmp_path: Path):
    outbox_id = add_job(db)
    started = tmp_path / "started"
    child = subprocess.Popen(
        [sys.executable, "-c", WORKER_THAT_DIES, db.url, str(started), str(outbox_id)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_until(started.exists, timeout=30)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
    with db.transaction() as session:  # the dead worker's lease runs out (a minute, here at once)
        session.execute(update(Outbox).values(locked_until=utcnow() - timedelta(seconds=1)))

    finished: list[int] = []
    rescuer = OutboxRunner(db, handlers({PROBE: lambda job: finished.append(job.id)}))
    assert outbox_id in [offer.id for offer in rescuer.due()]
    assert rescuer.run(outbox_id) and not rescuer.run(outbox_id)
    row = status_of(db, outbox_id)
    assert finished == [outbox_id] and row.status == OutboxStatus.DONE and row.attempts == 2


def test_the_sweep_does_not_offer_the_same_due_row_twice_in_a_row(db: Database):
    runner = OutboxRunner(db, handlers({}))
    with db.transaction() as session:  # due rows whose hand-over was lost
        for _ in range(3):
            session.add(Outbox(kind=PROBE, offered_at=None))
    first = [offer.id for offer in runner.due()]
    assert len(first) == 3 and runner.due() == []


# --- order and parts of deliveries -------------------------------------------------------------------


class FlakySender:
    """Refuses the first send of `flaky` once (retryable), takes everything else, in the order given."""

    def __init__(self, flaky: str) -> None:
        self.flaky, self.failed, self.sent = flaky, False, []  # type: ignore[var-annotated]

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        if message.text == self.flaky and not self.failed:
            self.failed = True
            raise RetryableDelivery("Graph answered 503")
        self.sent.append(message.text)
        return SendReceipt(f"wamid.{len(self.sent)}")


def test_replies_keep_the_order_the_rep_wrote_them_through_a_retryable_error(db: Database):
    first = reply(db, "FIRST")
    with db.sessions() as session:
        conversation_id = session.get_one(Message, first).conversation_id
    ana = Actor.member(db.run(lambda s: do_register_member(s, "U1", name="Ana", email=None)))
    second = db.run(
        lambda s: do_reply(s, conversation_id, "SECOND", actor=ana, slack_channel="C1", slack_ts="1.2")
    ).message_id
    sender = FlakySender("FIRST")
    runner = OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"whatsapp": sender})}))
    with db.sessions() as session:
        first_job, second_job = session.scalars(
            select(Outbox.id).where(Outbox.kind == JobKind.DELIVER).order_by(Outbox.id)
        ).all()

    runner.run(first_job)  # refused: waits for its retry
    assert not runner.run(second_job), "SECOND overtook FIRST"
    make_due(db)
    outcome = runner.run(first_job)
    assert [offer.id for offer in outcome.offers] == [second_job]  # handed on at once, not at the next sweep
    runner.run(second_job)

    assert sender.sent == ["FIRST", "SECOND"]
    assert message(db, first).delivery_status == message(db, second).delivery_status == DeliveryStatus.SENT


def test_a_long_reply_whose_second_part_fails_once_reaches_the_lead_once_per_part(db: Database):
    bodies: list[str] = []
    refused = []

    def graph(request: httpx.Request) -> httpx.Response:
        import json

        body = json.loads(request.content)["text"]["body"]
        if len(bodies) == 1 and not refused:  # part 2, the first time
            refused.append(body)
            return httpx.Response(503, json={"error": {"code": 131000, "message": "Something went wrong"}})
        bodies.append(body)
        return httpx.Response(200, json={"messages": [{"id": f"wamid.part{len(bodies)}"}]})

    sender = WhatsAppSender(
        api_url="https://graph.test/v23.0",
        phone_number_id="PN1",
        access_token="tok",
        client=httpx.Client(transport=httpx.MockTransport(graph)),
    )
    text = ("a" * (TEXT_LIMIT - 10) + "\n\n") + ("b" * (TEXT_LIMIT - 10) + "\n\n") + "c" * 100
    message_id = reply(db, text)
    runner = OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"whatsapp": sender})}))
    with db.sessions() as session:
        job = session.scalar(select(Outbox.id).where(Outbox.kind == JobKind.DELIVER))
    assert job is not None

    runner.run(job)
    assert message(db, message_id).parts_sent == 1  # part 1 is recorded as sent
    make_due(db)
    runner.run(job)

    assert [body[0] for body in bodies] == ["a", "b", "c"]  # each part once, in order
    sent = message(db, message_id)
    assert sent.delivery_status == DeliveryStatus.SENT and sent.parts_sent == 3
    assert sent.provider_message_id == "wamid.part3"


def test_a_status_that_beats_our_record_of_the_send_is_kept(db: Database):
    message_id = reply(db)
    delivered = DeliveryUpdate("whatsapp", "wamid.early", DeliveryStatus.DELIVERED, utcnow())
    assert not db.run(lambda s: do_record_delivery(s, delivered))  # no message has that id yet

    class Sender:
        def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
            return SendReceipt("wamid.early")

    runner = OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"whatsapp": Sender()})}))
    with db.sessions() as session:
        job = session.scalar(select(Outbox.id).where(Outbox.kind == JobKind.DELIVER))
    assert job is not None
    runner.run(job)

    assert message(db, message_id).delivery_status == DeliveryStatus.DELIVERED
    with db.sessions() as session:
        assert session.scalar(select(Message.delivery_error).where(Message.id == message_id)) is None


def test_a_status_for_a_message_still_being_sent_waits_for_the_send_to_be_recorded(db: Database):
    message_id = reply(db)
    with db.transaction() as session:  # an earlier send gave it an id; it is being sent again now
        sending = session.get_one(Message, message_id)
        sending.provider_message_id, sending.delivery_status = "wamid.old", DeliveryStatus.SENDING
    sent = DeliveryUpdate("whatsapp", "wamid.old", DeliveryStatus.SENT, utcnow())
    assert not db.run(lambda s: do_record_delivery(s, sent))
    assert message(db, message_id).delivery_status == DeliveryStatus.SENDING  # not skipped ahead
