"""The distributed runtime: Celery tasks over the same outbox the embedded worker uses.

Redis only carries "run outbox item N" nudges; the outbox table stays the record of work. If Redis is
down when a change commits, the nudge is lost but the row is not: the beat-driven sweep re-offers it.
"""

from __future__ import annotations

import logging
import queue
import threading
from functools import cache
from typing import TYPE_CHECKING

from celery import Celery

if TYPE_CHECKING:
    from core.wiring import Container

log = logging.getLogger(__name__)

celery_app = Celery("threadline")


def configure(redis_url: str, *, sweep_seconds: float) -> Celery:
    celery_app.conf.update(
        broker_url=redis_url,
        task_ignore_result=True,
        task_acks_late=True,  # a worker that dies mid-task leaves the nudge for another worker
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        broker_transport_options={"socket_connect_timeout": 3, "socket_timeout": 5},
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep-outbox": {"task": "threadline.sweep_outbox", "schedule": sweep_seconds},
        },
    )
    return celery_app


@cache
def _container() -> Container:
    # Built on first use inside the worker process, from the same settings as the web process.
    from core.wiring import build_container

    return build_container()


@celery_app.task(name="threadline.run_outbox")
def run_outbox(outbox_id: int) -> None:
    _container().runner.run(outbox_id)


@celery_app.task(name="threadline.sweep_outbox")
def sweep_outbox() -> int:
    due = _container().runner.due()
    for outbox_id in due:
        run_outbox.apply_async((outbox_id,), retry=False)
    return len(due)


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
                run_outbox.apply_async((outbox_id,), retry=False)
            except Exception as exc:
                log.warning("could not queue outbox item %s (%s); the sweep will pick it up", outbox_id, exc)
