"""`threadline replay [--parked]`: process inbox deliveries now — and, with --parked, the parked ones.

A delivery is parked when our code could not process it (a bug, a shape we did not know); it is kept
raw with the reason. After the fix is deployed, replay sends it through the same path again. Messages
it already brought in are recognised by their provider ids and not stored twice.
"""

from __future__ import annotations

import argparse
from functools import partial

from sqlalchemy import func, select

from app.container import build_container
from core.models import Inbox, InboxStatus
from core.outbox import release
from core.settings import Settings


def replay(settings: Settings, args: argparse.Namespace) -> int:
    container = build_container(settings)
    # The work replay queues is run by the server's workers: their next sweep offers it.
    container.db.dispatch = partial(release, container.db)
    try:
        processed = container.inbox.replay(parked=args.parked)
        with container.db.sessions() as session:
            parked = session.scalar(select(func.count()).where(Inbox.status == InboxStatus.PARKED)) or 0
    finally:
        container.close()
    print(f"processed {processed} deliveries; {parked} parked")
    if parked:
        print("still parked: `threadline check` shows why; fix the cause, then replay --parked again")
    return 1 if parked else 0
