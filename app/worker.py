"""The in-process worker of the embedded runtime: a few threads over the outbox and the inbox.

Committed outbox items arrive through `dispatch` (called after commit) and wait in a priority queue:
urgent work (replies to leads, new cards) before backlog, then in order. Items rescheduled for later
(Slack's pace, a retry's backoff) wait in a timer queue until due, holding no thread. One thread drains
the inbox whenever a delivery is stored. The sweeper offers again what was never handed over (work
left by the last run, a lost offer, a lease that expired).
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from core.db import Offer
from core.inbox import InboxRunner
from core.outbox import OutboxRunner

log = logging.getLogger(__name__)


class EmbeddedWorker:
    def __init__(
        self,
        runner: OutboxRunner,
        inbox: InboxRunner,
        *,
        threads: int = 4,
        sweep_seconds: float = 5.0,
        sweeps: Sequence[Callable[[], object]] = (),  # more periodic work (the SLA reminders)
    ) -> None:
        self.runner = runner
        self.inbox = inbox
        self.threads = threads
        self.sweep_seconds = sweep_seconds
        self.sweeps = list(sweeps)
        self._ready: list[tuple[int, int]] = []  # (priority, id)
        self._later: list[tuple[datetime, int, int]] = []  # (at, priority, id)
        self._queued: set[int] = set()
        self._wake = threading.Condition()
        self._inbox_waiting = threading.Event()
        self._stopping = threading.Event()
        self._workers: list[threading.Thread] = []

    def dispatch(self, offers: list[Offer]) -> None:
        now = datetime.now(UTC)
        with self._wake:
            for offer in offers:
                if offer.at is not None and offer.at > now:
                    heapq.heappush(self._later, (offer.at, offer.priority, offer.id))
                elif offer.id not in self._queued:
                    self._queued.add(offer.id)
                    heapq.heappush(self._ready, (offer.priority, offer.id))
            self._wake.notify_all()

    def inbox_ready(self) -> None:
        self._inbox_waiting.set()

    def start(self) -> None:
        try:
            self.inbox.recover()  # before any thread runs: what the last run held is free now
        except Exception:
            log.exception("could not free the inbox deliveries the last run held; their leases will")
        targets = [self._work] * self.threads + [self._drain_inbox, self._sweep]
        for n, target in enumerate(targets):
            thread = threading.Thread(target=target, name=f"threadline-worker-{n}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the items in hand; what is still queued stays in the outbox and inbox for next time."""
        self._stopping.set()
        self._inbox_waiting.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._workers:
            thread.join(timeout)

    def _next(self) -> int | None:
        with self._wake:
            while not self._stopping.is_set():
                now = datetime.now(UTC)
                while self._later and self._later[0][0] <= now:
                    _at, priority, outbox_id = heapq.heappop(self._later)
                    if outbox_id not in self._queued:
                        self._queued.add(outbox_id)
                        heapq.heappush(self._ready, (priority, outbox_id))
                if self._ready:
                    _priority, outbox_id = heapq.heappop(self._ready)
                    self._queued.discard(outbox_id)
                    return outbox_id
                timeout = (self._later[0][0] - now).total_seconds() if self._later else None
                self._wake.wait(timeout)
        return None

    def _work(self) -> None:
        while (outbox_id := self._next()) is not None:
            try:
                outcome = self.runner.run(outbox_id)
            except Exception:
                # The runner records handler failures itself; this is the database being unreachable.
                log.exception("outbox item %s could not be run; the sweeper will offer it again", outbox_id)
                continue
            if outcome.offers:
                self.dispatch(outcome.offers)

    def _drain_inbox(self) -> None:
        while not self._stopping.is_set():
            self._inbox_waiting.wait()
            self._inbox_waiting.clear()
            if self._stopping.is_set():
                return
            try:
                self.inbox.run()
            except Exception:
                log.exception("inbox processing failed; the sweeper will try again")

    def _sweep(self) -> None:
        fresh_start = True  # the first sweep runs at start: it picks up what the last run left
        while True:
            try:
                self.dispatch(self.runner.due(fresh_start=fresh_start))
                fresh_start = False
                if self.inbox.waiting():
                    self.inbox_ready()
                self.inbox.purge()
                for sweep in self.sweeps:
                    sweep()
            except Exception:
                log.exception("sweep failed; trying again in %.0fs", self.sweep_seconds)
            if self._stopping.wait(self.sweep_seconds):
                return
