"""Engine, sessions and the transaction helper every use-case runs under.

Two promises live here:
- Outbox rows leave only after commit: `after_commit` hands the new rows' ids to the dispatcher, so no
  worker ever sees work that could still be rolled back (the Zulip `on_commit` habit). Releasing a
  savepoint is not a commit; rolling one back forgets only the rows written inside it.
- A use-case that loses a race (a unique key another worker took first, a stale version, SQLite busy,
  a PostgreSQL serialization failure) runs again from the start on fresh data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from core.errors import Conflict
from core.models import Outbox

log = logging.getLogger(__name__)

T = TypeVar("T")


class Offer(NamedTuple):
    """An outbox item handed to the workers: run it at `at` (None: now), lower priority first."""

    id: int
    priority: int = 1
    at: datetime | None = None


Dispatch = Callable[[list[Offer]], None]

RACE_RETRIES = 5
_NEW_OUTBOX = "threadline_new_outbox"
_SAVEPOINTS = "threadline_savepoints"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _serialize_sqlite_writers(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _serialize_sqlite_writers(engine: Engine) -> None:
    """Every SQLite transaction takes the write lock up front (BEGIN IMMEDIATE).

    A transaction that read first and upgraded to a writer later could fail with "database is locked"
    half-way; taking the lock at BEGIN makes concurrent use-cases queue instead (busy timeout 30 s).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below be the only one
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    def __init__(self, url: str, *, dispatch: Dispatch | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.dispatch: Dispatch = dispatch or (lambda ids: None)
        event.listen(self.sessions, "after_flush", _collect_new_outbox)
        event.listen(self.sessions, "after_transaction_create", _mark_savepoint)
        event.listen(self.sessions, "after_commit", self._hand_over_outbox)
        event.listen(self.sessions, "after_soft_rollback", _forget_new_outbox)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception."""
        with self.sessions() as session, session.begin():
            yield session

    def run(self, use_case: Callable[[Session], T]) -> T:
        """Run `use_case` in one transaction, again from scratch if it lost a race."""
        for attempt in range(1, RACE_RETRIES + 1):
            try:
                with self.transaction() as session:
                    return use_case(session)
            except (IntegrityError, StaleDataError) as exc:
                if attempt == RACE_RETRIES:
                    raise Conflict("the conversation kept changing underneath; try again") from exc
                log.debug("use-case lost a race (%s); retrying", type(exc).__name__)
            except DBAPIError as exc:
                if not _is_transient(exc) or attempt == RACE_RETRIES:
                    raise
                log.debug("transient database error; retrying: %s", exc.orig)
        raise AssertionError("unreachable")

    def _hand_over_outbox(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint was released: nothing is visible to others until the real commit
        ids = session.info.pop(_NEW_OUTBOX, [])
        session.info.pop(_SAVEPOINTS, None)
        if ids:
            self.dispatch(ids)

    def dispose(self) -> None:
        self.engine.dispose()


def _collect_new_outbox(session: Session, _flush_context: Any) -> None:
    # After a flush, `session.new` still lists what this flush inserted, now with primary keys.
    new = sorted(Offer(obj.id, obj.priority) for obj in session.new if isinstance(obj, Outbox))
    session.info.setdefault(_NEW_OUTBOX, []).extend(new)


def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    # Where this savepoint starts in the list, so rolling it back forgets only its own rows.
    if transaction.nested:
        marks = session.info.setdefault(_SAVEPOINTS, {})
        marks[id(transaction)] = len(session.info.get(_NEW_OUTBOX, []))


def _forget_new_outbox(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.nested:
        mark = session.info.get(_SAVEPOINTS, {}).pop(id(previous_transaction), None)
        if mark is not None and _NEW_OUTBOX in session.info:
            del session.info[_NEW_OUTBOX][mark:]
        return
    session.info.pop(_NEW_OUTBOX, None)
    session.info.pop(_SAVEPOINTS, None)


def _is_transient(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    if code in {"40001", "40P01"}:  # serialization failure, deadlock detected
        return True
    return "database is locked" in str(exc.orig)
