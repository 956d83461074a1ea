"""Strict readers of a provider's JSON, for the adapters' parsers: a value of the wrong type is a
`MalformedDelivery` (the delivery is parked with the reason), never a `None` or an object turned into
text in a thread."""

from __future__ import annotations

from typing import Any

from core.errors import MalformedDelivery


def object_of(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedDelivery(f"expected an object, got {type(value).__name__}")
    return value


def list_of(container: dict[str, Any], key: str) -> list[Any]:
    """`container[key]` as a list; absent or null is an empty list."""
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedDelivery(f"{key}: expected a list, got {type(value).__name__}")
    return value
