"""`threadline replay [--parked]`: process inbox deliveries now — and, with --parked, the parked ones.

A delivery is parked when our code could not process it (a bug, a shape we did not know); it is kept
raw with the reason. After the fix is deployed, replay sends it through the same path again. Messages
it already brought in are recognised by their provider ids and not stored twice.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

from sqlalchemy import func, select

from app.container import build_container
from core.inbox import InboxRunner
from core.models import Inbox, InboxStatus
from core.outbox import release
from core.settings import Settings


def replay(settings: Settings, args: argparse.Namespace) -> int:
    container = build_container(settings)
    # The work replay queues is run by the server's workers: their next sweep offers it.
    container.db.dispatch = partial(release, container.db)
    try:
        ids = container.inbox.replay(parked=args.parked)
        outcome = _settled(container.inbox, ids)
        with container.db.sessions() as session:
            parked = session.scalar(select(func.count()).where(Inbox.status == InboxStatus.PARKED)) or 0
    finally:
        container.close()
    done, again = outcome.get("done", 0), outcome.get("parked", 0)
    print(f"replayed {len(ids)} deliveries: {done} processed, {again} parked again; {parked} parked in all")
    if parked:
        print("still parked: `threadline check` shows why; fix the cause, then replay --parked again")
    return 1 if parked else 0


def _settled(inbox: InboxRunner, ids: list[int], timeout: float = 60.0) -> dict[str, int]:
    """The deliveries' outcome once no runner (this one, or a running server's) still holds one."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = inbox.outcome(ids)
        if not (outcome.get("new") or outcome.get("running")) or time.monotonic() > deadline:
            return outcome
        time.sleep(0.1)  # a running server's runner took some: wait for its outcome
