"""Taking in what a channel delivered: parse it with its adapter, then run the use-cases.

Called with a verified raw body (a webhook's, a poller's). Each message is stored in its own
transaction before the provider gets its 200, so a 200 always means "we have it".
"""

from __future__ import annotations

import logging
from functools import partial

from core.actions.inbound import do_receive, do_record_delivery
from core.db import Database
from core.metrics import INBOUND
from core.ports import ChannelAdapter

log = logging.getLogger(__name__)


class Intake:
    def __init__(self, db: Database, *, ai_available: bool) -> None:
        self.db = db
        self.ai_available = ai_available

    def accept(self, adapter: ChannelAdapter, body: bytes) -> None:
        """Parse and store; `MalformedDelivery` from the adapter goes to the caller unchanged."""
        parsed = adapter.parse(body)
        for inbound in parsed.messages:
            result = self.db.run(partial(do_receive, inbound=inbound, ai_available=self.ai_available))
            INBOUND.labels(adapter.name, "duplicate" if result.duplicate else "stored").inc()
        for update in parsed.updates:
            self.db.run(partial(do_record_delivery, update=update))
        log.info(
            "%s delivery: %d messages, %d statuses", adapter.name, len(parsed.messages), len(parsed.updates)
        )
