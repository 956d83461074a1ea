"""Slack payloads read into typed values, strictly: what Slack always sends must be there, with its type.

A signed payload missing a field its kind always carries (or carrying `null` or an object where Slack
sends a string) raises `BadPayload`; the app's error handler answers 400 with one WARNING line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.ports import Template

MAX_ID = 2**63 - 1  # the largest id a database row can have


class BadPayload(Exception):
    """A signed Slack payload that is not shaped as Slack shapes it."""


def text(container: Any, *path: str) -> str:
    """An id, a timestamp or a URL Slack always sends: never empty, never a NUL or a lone surrogate
    (which no Slack id holds, and which PostgreSQL cannot even be asked about: a 500, not a 400)."""
    value = _at(container, path)
    if not isinstance(value, str) or not value:
        raise BadPayload(f"{'.'.join(path)}: expected a non-empty string, got {type(value).__name__}")
    if "\x00" in value or not _encodable(value):
        raise BadPayload(f"{'.'.join(path)}: not a Slack value (a NUL or a lone surrogate)")
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def optional_text(container: Any, *path: str) -> str | None:
    value = _at(container, path)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadPayload(f"{'.'.join(path)}: expected a string, got {type(value).__name__}")
    return value or None


def row_id(value: Any, what: str) -> int:
    """A database id we put in a button value or a modal's private_metadata."""
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19):
        raise BadPayload(f"{what}: expected an id, got {str(value)[:40]!r}")
    number = int(value)
    if not 0 < number <= MAX_ID:
        raise BadPayload(f"{what}: {number} is not an id")
    return number


def _at(container: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(container, dict):
            return None
        container = container.get(key)
    return container


@dataclass(frozen=True)
class Click:
    """A click on a button or a select in one of our messages."""

    user_id: str
    channel: str
    message_ts: str  # the clicked message
    thread_ts: str  # its thread's parent: the card, for everything in a conversation's thread
    trigger_id: str | None
    action_id: str
    value: str | None
    selected_user: str | None


def click(body: dict[str, Any], action: dict[str, Any]) -> Click:
    message_ts = text(body, "container", "message_ts")
    return Click(
        user_id=text(body, "user", "id"),
        channel=text(body, "channel", "id"),
        message_ts=message_ts,
        thread_ts=optional_text(body, "container", "thread_ts") or message_ts,
        trigger_id=optional_text(body, "trigger_id"),
        action_id=text(action, "action_id"),
        value=optional_text(action, "value"),
        selected_user=optional_text(action, "selected_user"),
    )


@dataclass(frozen=True)
class ThreadMessage:
    """A message someone wrote in a thread (or an edit of one)."""

    user_id: str
    channel: str
    ts: str
    thread_ts: str
    text: str
    blocks: Any
    subtype: str | None


def thread_message(event: dict[str, Any]) -> ThreadMessage:
    return ThreadMessage(
        user_id=text(event, "user"),
        channel=text(event, "channel"),
        ts=text(event, "ts"),
        thread_ts=text(event, "thread_ts"),
        text=optional_text(event, "text") or "",
        blocks=event.get("blocks"),
        subtype=optional_text(event, "subtype"),
    )


@dataclass(frozen=True)
class Submission:
    user_id: str
    callback_id: str
    private_metadata: str | None
    values: dict[str, Any]


def submission(body: dict[str, Any], view: dict[str, Any]) -> Submission:
    values = _at(view, ("state", "values"))
    if not isinstance(values, dict) or not all(
        isinstance(block, dict) and all(isinstance(element, dict) for element in block.values())
        for block in values.values()
    ):
        raise BadPayload("view.state.values: expected blocks of elements")
    return Submission(
        user_id=text(body, "user", "id"),
        callback_id=text(view, "callback_id"),
        private_metadata=optional_text(view, "private_metadata"),
        values=values,
    )


def template_choice(value: str | None) -> tuple[int, Template]:
    """A template button's value (bot.blocks.ids.SEND_TEMPLATE): the message not sent, and the template."""
    try:
        choice = json.loads(value or "")
    except ValueError:
        raise BadPayload("a template button's value is not JSON") from None
    if not isinstance(choice, dict):
        raise BadPayload("a template button's value is not an object")
    name, language = choice.get("n"), choice.get("l")
    if not (isinstance(name, str) and name and isinstance(language, str) and language):
        raise BadPayload("a template button's value names no template")
    message_id = choice.get("m")
    return row_id(str(message_id) if isinstance(message_id, int) else None, "template's message"), Template(
        name, language
    )
