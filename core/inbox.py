"""The inbox: every verified inbound delivery, kept raw before anything parses it (DESIGN §2, §3).

`store` is all an edge does: one insert (a provider's retry of the same delivery inserts nothing),
committed before the provider gets its 200. `InboxRunner` then takes each delivery to its source:
- a lead channel's delivery is parsed by the channel's parser and its use-cases run, a batch per
  transaction with each delivery in its own savepoint;
- a delivery of another source (Slack's message events) goes to that source's handler, which calls
  whatever it needs (Slack, to know who wrote) and runs its own use-cases.
One delivery our code cannot process is *parked* with its reason and the rest of the batch goes on;
one whose parser or use-case says "not yet" (`Deferred`) is taken again then, and parked only after
MAX_DEFERRALS such answers.
`replay` sends parked deliveries through again once the cause is fixed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, partial
from itertools import groupby

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from core.actions.health import do_record_account_health
from core.actions.inbound import do_receive_many, do_record_delivery, thread_of
from core.db import Database
from core.errors import Deferred
from core.log_context import log_context
from core.metrics import INBOUND, INBOX_PARKED
from core.models import ChannelAccount, EarlyStatus, Inbox, InboxStatus, utcnow
from core.ports import Parsed
from core.text import clean

log = logging.getLogger(__name__)

# Deliveries per transaction. SQLite has one writer: a short batch lets webhooks store between batches.
BATCH = {"postgresql": 200, "sqlite": 25}
LEASE = timedelta(minutes=2)  # a batch takes a second or so; a runner gone this long has died (default)
SAVEPOINT_RETRIES = 3
TURN_WAIT_SECONDS = 1.0
MAX_DEFERRALS = 30  # a handler that keeps saying "not yet" (minutes of it) is parked with its reason
EARLY_STATUS_KEPT = timedelta(days=1)

Parse = Callable[[bytes], Parsed]
_Outcome = tuple[str, str, str, bool]  # stored or duplicate, channel, account, written by the lead
Handle = Callable[[bytes], None]  # runs a delivery itself: called outside any transaction


def delivery_key(body: bytes, key: str | None = None) -> str:
    """The dedupe key: the provider's own id when it gives one, else a digest of the exact bytes."""
    return key[:200] if key else "sha256:" + hashlib.sha256(body).hexdigest()


def store(db: Database, source: str, body: bytes, key: str | None = None) -> int | None:
    """Keep one verified delivery. Returns its row id, or None if it was stored before (a retry)."""
    values = {
        "source": source,
        "dedupe_key": delivery_key(body, key),
        "body": body,
        "status": InboxStatus.NEW,
        "attempts": 0,
        "received_at": utcnow(),
    }
    # On the hot path of every webhook: a Core statement on a plain connection, no ORM session.
    with db.engine.begin() as connection:
        return connection.execute(_insert_statement(db.is_sqlite), values).scalar()


@cache
def _insert_statement(sqlite: bool) -> Insert:
    insert = sqlite_insert if sqlite else postgresql_insert
    return insert(Inbox).on_conflict_do_nothing(index_elements=["source", "dedupe_key"]).returning(Inbox.id)


@dataclass(frozen=True)
class _Claimed:
    id: int
    source: str
    body: bytes
    token: int  # attempts at claim time: the fencing token for marking it done


class InboxRunner:
    def __init__(
        self,
        db: Database,
        parsers: Mapping[str, Parse],
        *,
        ai_available: bool,
        handlers: Mapping[str, Handle] | None = None,
        batch: int | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self.db = db
        self.parsers = dict(parsers)
        self.handlers = dict(handlers or {})
        self.ai_available = ai_available
        self.batch = batch or BATCH.get(db.engine.dialect.name, 50)
        self.lease = lease

    def run(self) -> int:
        """Process deliveries until none is waiting; returns how many were processed."""
        total = 0
        while claimed := self._claim():
            total += self._process(claimed)
        log.debug("inbox run processed %d deliveries", total)
        return total

    def replay(self, *, parked: bool) -> list[int]:
        """Run what is waiting now (and, with `parked`, what was parked); returns the ids sent through.

        A running server's own runner may take some of them first: they are processed either way.
        """
        with self.db.transaction() as session:
            statuses = [InboxStatus.NEW, InboxStatus.PARKED] if parked else [InboxStatus.NEW]
            ids = list(session.scalars(select(Inbox.id).where(Inbox.status.in_(statuses))))
            if parked:
                session.execute(
                    update(Inbox)
                    .where(Inbox.status == InboxStatus.PARKED)
                    .values(status=InboxStatus.NEW, locked_until=None, attempts=0)
                    .execution_options(synchronize_session=False)
                )
        self.run()
        return ids

    def outcome(self, ids: list[int]) -> dict[str, int]:
        """How many of these deliveries are in each state."""
        with self.db.sessions() as session:
            rows = session.execute(
                select(Inbox.status, func.count()).where(Inbox.id.in_(ids)).group_by(Inbox.status)
            ).all()
        return {str(status): int(count) for status, count in rows}

    def waiting(self) -> bool:
        with self.db.sessions() as session:
            return session.scalar(select(Inbox.id).where(_claimable()).limit(1)) is not None

    def purge(self) -> None:
        """Forget statuses no send ever claimed (a message of another system on the same number)."""
        with self.db.transaction() as session:
            session.execute(delete(EarlyStatus).where(EarlyStatus.created_at < utcnow() - EARLY_STATUS_KEPT))

    # --- claim ---------------------------------------------------------------------------------------

    def _claim(self) -> list[_Claimed]:
        now = utcnow()
        with self.db.transaction() as session:
            ids = list(
                session.scalars(
                    select(Inbox.id)
                    .where(_claimable(now))
                    .order_by(Inbox.id)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            )
            if not ids:
                return []
            session.execute(
                update(Inbox)
                .where(Inbox.id.in_(ids))
                .values(
                    status=InboxStatus.RUNNING, locked_until=now + self.lease, attempts=Inbox.attempts + 1
                )
                .execution_options(synchronize_session=False)
            )
            rows = session.execute(
                select(Inbox.id, Inbox.source, Inbox.body, Inbox.attempts)
                .where(Inbox.id.in_(ids))
                .order_by(Inbox.id)
            ).all()
        return [_Claimed(row.id, row.source, row.body, row.attempts) for row in rows]

    # --- process -------------------------------------------------------------------------------------

    def _process(self, claimed: list[_Claimed]) -> int:
        """Lead deliveries first (one batch transaction), then those of handled sources, in order."""
        parsed: list[tuple[_Claimed, Parsed]] = []
        parked: dict[int, str | Deferred] = {}  # why each delivery is parked, or when it is taken again
        for item in claimed:
            if item.source in self.handlers:
                continue
            try:
                parsed.append((item, self._parse(item)))
            except Deferred as exc:  # the parser needs something that did not answer yet
                parked[item.id] = exc
            except Exception as exc:
                parked[item.id] = _reason(exc)
        try:
            parked.update(self.db.run(lambda session: self._apply(session, parsed)))
        except (OperationalError, InterfaceError):
            raise  # the database is away: the leases run out and the deliveries are taken again
        except DBAPIError:
            # The batch as a whole lost to the database (a deadlock with another runner…): one at a time.
            for one in parsed:
                try:
                    parked.update(self.db.run(partial(self._apply, batch=[one])))
                except (OperationalError, InterfaceError):
                    raise
                except DBAPIError as exc:  # this delivery's data: parked, with the database's reason
                    parked[one[0].id] = _reason(exc)
        for item in claimed:
            outcome = parked.get(item.id)
            if isinstance(outcome, Deferred):
                self._put_off(item, outcome)
            elif outcome is not None:
                self._park(item, outcome)
        for item in claimed:
            if item.source in self.handlers:
                self._handle(item)
        return len(claimed)

    def _handle(self, item: _Claimed) -> None:
        if self._earlier_unfinished(item):
            # A teammate's earlier message is still waiting (its lookup did not answer): this one waits
            # its turn, so replies reach the lead in the order they were written. Not a try.
            self._defer(item, TURN_WAIT_SECONDS, counted=False)
            return
        try:
            with log_context(inbox_id=item.id, source=item.source):
                self.handlers[item.source](item.body)
        except DBAPIError:
            raise  # the database is away: the lease runs out and the delivery is taken again
        except Deferred as exc:
            self._put_off(item, exc)
            return
        except Exception as exc:
            self._park(item, _reason(exc))
            return
        with self.db.transaction() as session:
            _mark_done(session, item)

    def _put_off(self, item: _Claimed, exc: Deferred) -> None:
        if item.token < MAX_DEFERRALS:
            self._defer(item, exc.seconds)
        else:
            self._park(item, f"gave up after {item.token} tries: {exc.reason}")

    def _defer(self, item: _Claimed, seconds: float, *, counted: bool = True) -> None:
        """Not yet (a lookup its handler needs did not answer): hold it until then, then take it again."""
        with self.db.transaction() as session:
            session.execute(
                update(Inbox)
                .where(Inbox.id == item.id, Inbox.attempts == item.token)
                .values(
                    locked_until=utcnow() + timedelta(seconds=seconds),
                    attempts=item.token if counted else item.token - 1,
                )
                .execution_options(synchronize_session=False)
            )

    def _earlier_unfinished(self, item: _Claimed) -> bool:
        with self.db.sessions() as session:
            earlier = session.scalar(
                select(Inbox.id)
                .where(
                    Inbox.source == item.source,
                    Inbox.id < item.id,
                    Inbox.status.in_([InboxStatus.NEW, InboxStatus.RUNNING]),
                )
                .limit(1)
            )
        return earlier is not None

    def recover(self) -> None:
        """At the start of the only runner there is (embedded): what the last run held is free now."""
        with self.db.transaction() as session:
            session.execute(
                update(Inbox)
                .where(Inbox.status == InboxStatus.RUNNING)
                .values(status=InboxStatus.NEW, locked_until=None)
                .execution_options(synchronize_session=False)
            )

    def _parse(self, item: _Claimed) -> Parsed:
        parser = self.parsers.get(item.source)
        if parser is None:
            raise LookupError(f"no channel named {item.source!r} is on: turn it on, then replay")
        return parser(item.body)

    def _apply(self, session: Session, batch: list[tuple[_Claimed, Parsed]]) -> dict[int, str | Deferred]:
        """Run every delivery's use-cases in this one transaction, each in its own savepoint.

        Returns the deliveries not done: why each is parked, or (`Deferred`) when to take it again.
        """
        parked: dict[int, str | Deferred] = {}
        seen: set[tuple[str, str]] = set()
        for item, result in batch:
            with log_context(inbox_id=item.id, source=item.source):
                outcome = self._apply_in_savepoint(session, item, result)
            if isinstance(outcome, str | Deferred):
                parked[item.id] = outcome
                continue
            for stored, channel, account, from_lead in outcome:
                INBOUND.labels(channel, stored).inc()
                if from_lead:  # not one our own account wrote on the provider's side
                    seen.add((channel, account))
            if result.problems:  # the readable rest is in; the delivery waits for a fix and a replay
                parked[item.id] = "could not read: " + "; ".join(result.problems[:5])
        _mark_seen(session, sorted(seen))
        return parked

    def _apply_in_savepoint(
        self, session: Session, item: _Claimed, result: Parsed
    ) -> list[_Outcome] | str | Deferred:
        """The delivery's outcomes, why it is parked, or when to take it again."""
        for attempt in range(1, SAVEPOINT_RETRIES + 1):
            try:
                with session.begin_nested():
                    outcomes = self._apply_one(session, item, result)
                # What this delivery loaded is written: let it go, or every later query of the batch
                # would check it again before autoflushing (a batch grows quadratically otherwise).
                session.expunge_all()
                return outcomes
            except _LeaseLost:
                return []  # another runner took it over and records it
            except Deferred as exc:  # rolled back: nothing of it is kept until it is taken again
                return exc
            except IntegrityError as exc:  # a concurrent runner took a key first: read it, go again
                if attempt == SAVEPOINT_RETRIES:
                    return _reason(exc)
            except DBAPIError:
                raise
            except Exception as exc:
                return _reason(exc)
        raise AssertionError("unreachable")

    def _apply_one(self, session: Session, item: _Claimed, result: Parsed) -> list[_Outcome]:
        outcomes = []
        # A delivery's messages of one conversation (a backlog in one webhook) are stored together.
        for _thread, group in groupby(result.messages, key=thread_of):
            messages = list(group)
            for inbound, received in zip(
                messages, do_receive_many(session, messages, ai_available=self.ai_available), strict=True
            ):
                outcome = "duplicate" if received.duplicate else "stored"
                outcomes.append((outcome, inbound.channel, inbound.channel_account, not inbound.from_us))
        for status in result.updates:
            do_record_delivery(session, status)
        for health in result.health:
            do_record_account_health(session, health)
        if not _mark_done(session, item):
            raise _LeaseLost()
        return outcomes

    def _park(self, item: _Claimed, reason: str) -> None:
        log.warning("inbox %s (%s) parked: %s", item.id, item.source, reason)
        INBOX_PARKED.labels(item.source).inc()
        with self.db.transaction() as session:
            session.execute(
                update(Inbox)
                .where(Inbox.id == item.id, Inbox.attempts == item.token)
                .values(status=InboxStatus.PARKED, locked_until=None, last_error=reason)
                .execution_options(synchronize_session=False)
            )


class _LeaseLost(Exception):
    """This runner's claim on a delivery expired and another runner claimed it."""


def _mark_done(session: Session, item: _Claimed) -> bool:
    """Done, if this runner still holds the delivery (its claim's token is the row's)."""
    done = session.execute(
        update(Inbox)
        .where(Inbox.id == item.id, Inbox.attempts == item.token, Inbox.status == InboxStatus.RUNNING)
        .values(status=InboxStatus.DONE, locked_until=None, done_at=utcnow(), last_error=None)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def _claimable(now: datetime | None = None) -> ColumnElement[bool]:
    now = now or utcnow()
    return or_(
        Inbox.status == InboxStatus.NEW,
        (Inbox.status == InboxStatus.RUNNING) & (Inbox.locked_until < now),
    )


def _reason(exc: BaseException) -> str:
    return clean(f"{type(exc).__name__}: {exc}")[:2000]


def _mark_seen(session: Session, accounts: list[tuple[str, str]]) -> None:
    """Remember when each channel account last heard from a lead (shown by `check`)."""
    now = utcnow()
    for channel, account in accounts:
        row = session.scalar(
            select(ChannelAccount).where(
                ChannelAccount.channel == channel, ChannelAccount.account == account[:200]
            )
        )
        if row is None:
            session.add(ChannelAccount(channel=channel, account=account[:200], last_message_at=now))
        else:
            row.last_message_at = now
