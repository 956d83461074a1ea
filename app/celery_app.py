"""The distributed runtime's queue: a Celery app over Redis, and the dispatcher that nudges it.

Redis only carries nudges — "run outbox item N", "the inbox has deliveries" — while the outbox and
inbox tables stay the record of work. If Redis is down when a change commits, the nudge is lost but the
row is not: the beat-driven sweep offers it again. Urgent items (replies to leads, new cards) go on
their own queue, which workers read in turn with the default one, so they never queue behind backlog
work; an item rescheduled for later is published with that countdown. Tasks are published by name,
so this module needs nothing of the tasks' own (`app.tasks`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import UTC, datetime

from celery import Celery

from core.db import Offer

log = logging.getLogger(__name__)

RUN_OUTBOX = "threadline.run_outbox"
RUN_INBOX = "threadline.run_inbox"
SWEEP_OUTBOX = "threadline.sweep_outbox"
INBOX_NUDGE_GAP = 0.05  # seconds
URGENT_QUEUE = "threadline.urgent"
DEFAULT_QUEUE = "threadline"
QUEUES = f"{URGENT_QUEUE},{DEFAULT_QUEUE}"

celery_app = Celery("threadline")


def configure(redis_url: str, *, sweep_seconds: float) -> Celery:
    celery_app.conf.update(
        broker_url=redis_url,
        task_ignore_result=True,
        # A nudge is acknowledged when a worker takes it. Work a worker dies in the middle of is not lost
        # with its nudge: the outbox row's lease expires and the sweep offers it again. (Acking late also
        # left unacked nudges that kombu fails to restore when Redis drops mid-task, wedging the worker.)
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        broker_transport_options={"socket_connect_timeout": 3, "socket_timeout": 5},
        worker_hijack_root_logger=False,
        task_default_queue=DEFAULT_QUEUE,
        beat_schedule={"sweep-outbox": {"task": SWEEP_OUTBOX, "schedule": sweep_seconds}},
    )
    return celery_app


def nudge(offer: Offer) -> None:
    countdown = None
    if offer.at is not None:
        countdown = max(0.0, (offer.at - datetime.now(UTC)).total_seconds())
    queue = URGENT_QUEUE if offer.priority == 0 else DEFAULT_QUEUE
    celery_app.send_task(RUN_OUTBOX, (offer.id,), queue=queue, countdown=countdown, retry=False)


def nudge_inbox() -> None:
    celery_app.send_task(RUN_INBOX, queue=URGENT_QUEUE, retry=False)


class CeleryDispatcher:
    """Hands committed outbox ids to Celery from a background thread.

    The request that committed never waits on Redis: with Redis slow or down it still answers Slack
    within its 3 s. A nudge that cannot be published is only logged; the sweep finds the row.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Offer | None] = queue.SimpleQueue()
        self._publisher = threading.Thread(
            target=self._publish, name="threadline-celery-publisher", daemon=True
        )
        self._publisher.start()

    def __call__(self, offers: list[Offer]) -> None:
        for offer in offers:
            self._queue.put(offer)

    def inbox_ready(self) -> None:
        """A delivery was stored; many in a burst become one nudge (a runner drains them all)."""
        self._queue.put(None)

    def _publish(self) -> None:
        last_inbox_nudge = 0.0
        while True:
            item = self._queue.get()
            if item is None:
                # Under a burst of webhooks, one nudge per INBOX_NUDGE_GAP is enough: the runner it wakes
                # drains everything stored before its last look, and the next nudge covers the rest.
                time.sleep(max(0.0, last_inbox_nudge + INBOX_NUDGE_GAP - time.monotonic()))
            inbox = item is None
            offers = [] if item is None else [item]
            while not self._queue.empty():  # what piled up while we published: one inbox nudge for all
                more = self._queue.get()
                if more is None:
                    inbox = True
                else:
                    offers.append(more)
            try:
                if inbox:
                    nudge_inbox()
                    last_inbox_nudge = time.monotonic()
                for offer in offers:
                    nudge(offer)
            except Exception as exc:
                log.warning("could not queue work (%s); the sweep will pick it up", exc)
