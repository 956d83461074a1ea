"""Keeping outbox leases alive while their work runs: one background thread renews every lease this
process holds, every third of the lease; a lease it finds taken by another worker is dropped (that
worker's claim holds the current fencing token, so this one records nothing when it finishes)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update

from core.db import Database
from core.models import Outbox, OutboxStatus, utcnow

log = logging.getLogger(__name__)


class LeaseRenewer:
    """Keeps the leases of the items this process runs alive, from one background thread."""

    def __init__(self, db: Database, lease: timedelta) -> None:
        self.db = db
        self.lease = lease
        self._held: dict[int, int] = {}
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None

    def holding(self, outbox_id: int, lease: int) -> _Holding:
        return _Holding(self, outbox_id, lease)

    def _add(self, outbox_id: int, lease: int) -> None:
        with self._guard:
            self._held[outbox_id] = lease
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._renew, name="threadline-lease-renewer", daemon=True
                )
                self._thread.start()

    def _still_held(self, outbox_id: int, lease: int) -> bool:
        with self._guard:
            return self._held.get(outbox_id) == lease

    def _remove(self, outbox_id: int, lease: int | None = None) -> None:
        """Stop renewing; with `lease`, only if that claim is still the one held (not a newer one)."""
        with self._guard:
            if lease is None or self._held.get(outbox_id) == lease:
                self._held.pop(outbox_id, None)

    def _renew(self) -> None:
        interval = self.lease.total_seconds() / 3
        stop = threading.Event()
        while not stop.wait(interval):
            with self._guard:
                held = dict(self._held)
            for outbox_id, lease in held.items():
                try:
                    with self.db.transaction() as session:
                        renewed = session.execute(
                            update(Outbox)
                            .where(
                                Outbox.id == outbox_id,
                                Outbox.lease == lease,
                                Outbox.status == OutboxStatus.RUNNING,
                            )
                            .values(locked_until=utcnow() + self.lease)
                            .execution_options(synchronize_session=False)
                        )
                    if renewed.rowcount != 1 and self._still_held(outbox_id, lease):  # type: ignore[attr-defined]
                        # (Not held any more: the work finished while we renewed. Nothing to say.)
                        log.warning(
                            "outbox %s: lease could not be renewed; another worker holds it", outbox_id
                        )
                        self._remove(outbox_id, lease)
                except Exception as exc:
                    log.warning("outbox %s: lease renewal failed (%s); trying again", outbox_id, exc)


@dataclass
class _Holding:
    renewer: LeaseRenewer
    outbox_id: int
    lease: int

    def __enter__(self) -> None:
        self.renewer._add(self.outbox_id, self.lease)

    def __exit__(self, *_exc: object) -> None:
        self.renewer._remove(self.outbox_id, self.lease)
