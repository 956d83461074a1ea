"""What the work in hand is about, for every log line it writes: the job, the conversation, the message.

Set where a unit of work starts — an outbox job, an inbox delivery, a Slack request — and read by the
log formatter (app.logs), which adds the fields to each line (JSON keys, or `[key=value …]` in text).
A ContextVar follows the work into asyncio tasks and `asyncio.to_thread` calls, and each thread of a
worker has its own, so two jobs running side by side never mix their fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

Fields = Mapping[str, str | int]

_EMPTY: Fields = MappingProxyType({})
_FIELDS: ContextVar[Fields] = ContextVar("threadline_log_context", default=_EMPTY)


@contextmanager
def log_context(**fields: str | int | None) -> Iterator[None]:
    """Within the block, log lines carry these fields (None: not known, left out) and the outer ones."""
    token = _FIELDS.set(_merged(fields))
    try:
        yield
    finally:
        _FIELDS.reset(token)


def add_log_context(**fields: str | int | None) -> None:
    """Fields learnt half-way through (the conversation a delivery belongs to): kept until the
    enclosing `log_context` block ends."""
    _FIELDS.set(_merged(fields))


def current_log_context() -> Fields:
    return _FIELDS.get()


def _merged(fields: Mapping[str, str | int | None]) -> Fields:
    known = {name: value for name, value in fields.items() if value is not None}
    return MappingProxyType({**_FIELDS.get(), **known}) if known else _FIELDS.get()
