"""The in-process worker of the embedded runtime: a few threads over the outbox, plus a sweeper.

Committed outbox ids arrive through `dispatch` (called after commit); the sweeper offers again what is
due but was never handed over (a restart, a retry whose time has come, a lease that expired).
"""

from __future__ import annotations

import logging
import queue
import threading

from core.outbox import OutboxRunner

log = logging.getLogger(__name__)


class EmbeddedWorker:
    def __init__(self, runner: OutboxRunner, *, threads: int = 4, sweep_seconds: float = 5.0) -> None:
        self.runner = runner
        self.threads = threads
        self.sweep_seconds = sweep_seconds
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._queued: set[int] = set()
        self._guard = threading.Lock()
        self._stopping = threading.Event()
        self._workers: list[threading.Thread] = []

    def dispatch(self, outbox_ids: list[int]) -> None:
        with self._guard:
            for outbox_id in outbox_ids:
                if outbox_id not in self._queued:
                    self._queued.add(outbox_id)
                    self._queue.put(outbox_id)

    def start(self) -> None:
        for n in range(self.threads):
            thread = threading.Thread(target=self._work, name=f"threadline-worker-{n}", daemon=True)
            thread.start()
            self._workers.append(thread)
        sweeper = threading.Thread(target=self._sweep, name="threadline-sweeper", daemon=True)
        sweeper.start()
        self._workers.append(sweeper)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the items in hand; what is still queued stays pending in the outbox for next time."""
        self._stopping.set()
        for _ in range(self.threads):
            self._queue.put(None)
        for thread in self._workers:
            thread.join(timeout)

    def _work(self) -> None:
        while not self._stopping.is_set():
            outbox_id = self._queue.get()
            if outbox_id is None:
                return
            with self._guard:
                self._queued.discard(outbox_id)
            try:
                self.runner.run(outbox_id)
            except Exception:
                # The runner records handler failures itself; this is the database being unreachable.
                log.exception("outbox item %s could not be run; the sweeper will offer it again", outbox_id)

    def _sweep(self) -> None:
        while True:  # the first sweep runs at start: it picks up what the last run left pending
            try:
                self.dispatch(self.runner.due())
            except Exception:
                log.exception("outbox sweep failed; trying again in %.0fs", self.sweep_seconds)
            if self._stopping.wait(self.sweep_seconds):
                return
