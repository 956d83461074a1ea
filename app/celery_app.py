"""The distributed runtime's queue: a Celery app over Redis, and the dispatcher that nudges it.

Redis only carries "run outbox item N" nudges; the outbox table stays the record of work. If Redis is
down when a change commits, the nudge is lost but the row is not: the beat-driven sweep re-offers it.
Tasks are published by name, so this module needs nothing of the tasks' own (`app.tasks`).
"""

from __future__ import annotations

import logging
import queue
import threading

from celery import Celery

log = logging.getLogger(__name__)

RUN_OUTBOX = "threadline.run_outbox"
SWEEP_OUTBOX = "threadline.sweep_outbox"

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
        beat_schedule={"sweep-outbox": {"task": SWEEP_OUTBOX, "schedule": sweep_seconds}},
    )
    return celery_app


def nudge(outbox_id: int) -> None:
    celery_app.send_task(RUN_OUTBOX, (outbox_id,), retry=False)


class CeleryDispatcher:
    """Hands committed outbox ids to Celery from a background thread.

    The request that committed never waits on Redis: with Redis slow or down it still answers Slack
    within its 3 s. A nudge that cannot be published is only logged; the sweep finds the row.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._publisher = threading.Thread(
            target=self._publish, name="threadline-celery-publisher", daemon=True
        )
        self._publisher.start()

    def __call__(self, outbox_ids: list[int]) -> None:
        for outbox_id in outbox_ids:
            self._queue.put(outbox_id)

    def _publish(self) -> None:
        while True:
            outbox_id = self._queue.get()
            try:
                nudge(outbox_id)
            except Exception as exc:
                log.warning("could not queue outbox item %s (%s); the sweep will pick it up", outbox_id, exc)
