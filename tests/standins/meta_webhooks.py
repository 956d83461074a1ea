"""WhatsApp webhook payloads exactly as Meta sends them, and Meta's signature over the raw body."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from pathlib import Path
from typing import Any

from tests.standins.graph_api import load_spec

_ids = itertools.count(1)
WABA_ID = "419561257915477"
DISPLAY_NUMBER = "15550783881"


def sign(app_secret: str, raw: bytes) -> str:
    """The X-Hub-Signature-256 header: sha256=HMAC-SHA256(app secret, raw body)."""
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


def _envelope(value: dict[str, Any], *, phone_number_id: str) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": phone_number_id},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
    }


def _message(
    kind: str,
    content: dict[str, Any] | list[Any],
    *,
    wa_id: str,
    name: str,
    message_id: str | None,
    phone_number_id: str,
) -> dict[str, Any]:
    message = {
        "from": wa_id,
        "id": message_id or f"wamid.LEAD{next(_ids):08d}",
        "timestamp": str(int(time.time())),
        "type": kind,
        kind: content,
    }
    return _envelope(
        {"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [message]},
        phone_number_id=phone_number_id,
    )


def text_message(
    *, wa_id: str, name: str, text: str, phone_number_id: str, message_id: str | None = None
) -> dict[str, Any]:
    return _message(
        "text", {"body": text}, wa_id=wa_id, name=name, message_id=message_id, phone_number_id=phone_number_id
    )


def media_message(
    kind: str,
    *,
    wa_id: str,
    name: str,
    phone_number_id: str,
    caption: str | None = None,
    filename: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    media: dict[str, Any] = {
        "mime_type": "image/jpeg",
        "sha256": "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=",
        "id": "1003383421387256",
    }
    if caption:
        media["caption"] = caption
    if filename:
        media["filename"] = filename
    return _message(
        kind, media, wa_id=wa_id, name=name, message_id=message_id, phone_number_id=phone_number_id
    )


def location_message(
    *,
    wa_id: str,
    name: str,
    lat: float,
    lon: float,
    place: str,
    address: str,
    phone_number_id: str,
    message_id: str | None = None,
) -> dict[str, Any]:
    location = {"address": address, "latitude": lat, "longitude": lon, "name": place}
    return _message(
        "location", location, wa_id=wa_id, name=name, message_id=message_id, phone_number_id=phone_number_id
    )


def reaction_message(
    *, wa_id: str, name: str, emoji: str, reacted_message_id: str, phone_number_id: str
) -> dict[str, Any]:
    reaction = {"message_id": reacted_message_id, "emoji": emoji}
    return _message(
        "reaction", reaction, wa_id=wa_id, name=name, message_id=None, phone_number_id=phone_number_id
    )


def status_update(
    *,
    message_id: str,
    recipient_id: str,
    status: str,
    phone_number_id: str,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient_id,
    }
    if status != "failed":
        entry["conversation"] = {"id": "CONVERSATION_ID", "origin": {"type": "service"}}
        entry["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
    if errors:
        entry["errors"] = errors
    return _envelope({"statuses": [entry]}, phone_number_id=phone_number_id)


def spec_webhook_examples(spec_path: Path) -> dict[str, dict[str, Any]]:
    """The spec's own webhook examples (under the path /whatsapp/webhooks), by name."""
    post = load_spec(spec_path)["paths"]["/whatsapp/webhooks"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    return {name: example["value"] for name, example in examples.items()}


def status_problems(spec_path: Path, payload: dict[str, Any]) -> list[str]:
    """How a status webhook built here breaks the spec's `StatusMessageValue` (empty: it does not)."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    spec = load_spec(spec_path)
    registry = Registry().with_resource(
        "spec", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    validator = jsonschema.Draft202012Validator(
        {"$ref": "spec#/components/schemas/StatusMessageValue"}, registry=registry
    )
    return [
        f"{'/'.join(map(str, error.path)) or 'value'}: {error.message}"
        for entry in payload["entry"]
        for change in entry["changes"]
        for error in validator.iter_errors(change["value"])
    ]
