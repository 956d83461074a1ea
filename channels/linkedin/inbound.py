"""Unipile's webhooks for LinkedIn: the shared secret, and the payload into core's values.

Two shapes reach `/webhooks/linkedin` (DESIGN §5):
- a message event `{account_id, account_type, event, chat_id, message_id, message, timestamp, sender,
  attendees, attachments, …}`: `message_received` is a message in one of our chats — the lead's, or
  ours (`is_sender`, or the sender is our own account: an echo of our send, or a message a teammate
  wrote in LinkedIn itself); other events (reactions, reads, edits) carry nothing Threadline keeps;
- an account status `{"AccountStatus": {account_id, account_type, message}}`: whether Unipile can still
  work our LinkedIn account.
Events of other accounts (a Unipile workspace may hold several) are not ours and are left alone.
Parsing is strict about types: a `null` where Unipile sends a string is a `MalformedDelivery`, never
the text "None" in a thread.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from core.errors import MalformedDelivery
from core.ports import AccountHealth, Attachment, Inbound, LeadProfile, Parsed
from core.ports.reading import list_of, object_of

CHANNEL = "linkedin"
ACCOUNT_TYPE = "LINKEDIN"
MESSAGE = "message_received"

# Unipile's account statuses (its "Account status updates" page). CONNECTING is a passing state: it
# says nothing yet either way. A status not listed here is logged by the inbox as nothing to do.
_HEALTHY = {"OK", "CREATION_SUCCESS", "RECONNECTED", "SYNC_SUCCESS"}
_BROKEN = {
    "CREDENTIALS": "LinkedIn logged Threadline out (password changed, session ended or expired): "
    "reconnect the account in Unipile",
    "ERROR": "Unipile stopped syncing the LinkedIn account after an error: "
    "restart or reconnect it in Unipile",
    "STOPPED": "Unipile stopped syncing the LinkedIn account: restart or reconnect it in Unipile",
    "DELETED": "the LinkedIn account was removed from Unipile: connect it again and set UNIPILE_ACCOUNT_ID",
}
# Unipile's attachment types → the kind a thread shows.
_KINDS = {"img": "image", "video": "video", "audio": "audio", "file": "document"}

_SHAPE_ERRORS = (KeyError, TypeError, AttributeError, ValueError, OverflowError, RecursionError)

OwnId = Callable[[], str]  # our account's LinkedIn provider id (Unipile is asked once, then cached)


def verify_secret(expected: str, header: str | None) -> bool:
    """`X-Unipile-Secret` equals the configured secret, compared in constant time."""
    if not header or not expected:
        return False
    # Compared as bytes: a header with non-ASCII characters is simply wrong, not an error.
    return hmac.compare_digest(expected.encode(), header.encode("utf-8", "replace"))


def shape_problem(raw: bytes) -> str | None:
    """What the edge checks before storing a verified body: a JSON object of one of Unipile's shapes.

    Anything deeper is left to the inbox runner, where a surprise parks the delivery with its reason.
    """
    try:
        payload = json.loads(raw)
    except RecursionError:
        return None  # JSON, but deeper than we read: kept, and parked by the inbox with the reason
    except ValueError as exc:
        return f"body is not JSON: {type(exc).__name__}"
    if not isinstance(payload, dict):
        return "not a Unipile webhook: expected a JSON object"
    if "AccountStatus" in payload:
        return None if isinstance(payload["AccountStatus"], dict) else "AccountStatus: expected an object"
    if not isinstance(payload.get("event"), str):
        return "not a Unipile webhook: no event and no AccountStatus"
    if payload["event"] == MESSAGE and not isinstance(payload.get("message_id"), str):
        return "message_received without a message_id"
    return None


def delivery_key(raw: bytes) -> str | None:
    """Unipile's own id for a message event (the inbox's dedupe key), so a retry is stored once.

    An account status has no id of its own, and the same status can come again later and mean it
    again (broken, healthy, broken): it is kept every time (applying it twice changes nothing).
    """
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if isinstance(payload, dict) and isinstance(payload.get("message_id"), str):
        return f"{payload.get('event')}:{payload['message_id']}"
    return None


def parse_webhook(raw: bytes | Any, *, account_id: str, own_id: OwnId) -> Parsed:
    """A verified webhook body (bytes, or decoded JSON) → what it says about our account `account_id`.

    `own_id` is asked only when the payload itself does not say whether we wrote the message; it may
    raise `Deferred` (Unipile did not answer), and the inbox then takes the delivery again later.
    """
    try:
        payload = json.loads(raw) if isinstance(raw, bytes | str) else raw
        if not isinstance(payload, dict):
            raise MalformedDelivery("not a Unipile webhook: expected a JSON object")
        if "AccountStatus" in payload:
            return _account_status(object_of(payload["AccountStatus"]), account_id)
        if (
            payload.get("account_id") != account_id
            or payload.get("account_type", ACCOUNT_TYPE) != ACCOUNT_TYPE
        ):
            return Parsed()  # another account of the same Unipile workspace
        if _str(payload, "event") != MESSAGE:
            return Parsed()  # reactions, reads, edits: nothing Threadline keeps
        return Parsed(messages=[_message(payload, account_id, own_id)])
    except MalformedDelivery:
        raise
    except _SHAPE_ERRORS as exc:
        raise MalformedDelivery(f"unexpected Unipile webhook shape: {type(exc).__name__}: {exc}") from exc


def _account_status(status: dict[str, Any], account_id: str) -> Parsed:
    if status.get("account_id") != account_id:
        return Parsed()
    said = _str(status, "message")
    if said in _HEALTHY:
        return Parsed(health=[AccountHealth(CHANNEL, account_id, ok=True)])
    if said in _BROKEN:
        return Parsed(
            health=[AccountHealth(CHANNEL, account_id, ok=False, reason=f"{said} — {_BROKEN[said]}")]
        )
    return Parsed()  # CONNECTING, or a status Unipile added since: no change either way


def _message(payload: dict[str, Any], account_id: str, own_id: OwnId) -> Inbound:
    message_id = _str(payload, "message_id")
    sender = object_of(payload["sender"])
    sender_id = _str(sender, "attendee_provider_id")
    ours = _from_us(payload, sender_id, own_id)
    written = _opt_str(payload, "message") or ""
    attachments, described = _attachments(payload.get("attachments"), message_id)
    only_files = bool(described) and not written.strip()
    quoted = payload.get("quoted")
    reply_to = _opt_str(quoted, "id") if isinstance(quoted, dict) else None
    return Inbound(
        channel=CHANNEL,
        channel_account=account_id,
        provider_thread_id=_str(payload, "chat_id"),
        provider_message_id=message_id,
        sender=_lead(payload, sender, ours, sender_id),
        sent_at=_time(_str(payload, "timestamp")),
        kind=attachments[0]["kind"] if only_files and attachments else "text",
        text=described if only_files else written,
        attachments=attachments,
        reply_to_provider_id=reply_to,
        from_us=ours,
    )


def _from_us(payload: dict[str, Any], sender_id: str, own_id: OwnId) -> bool:
    """We wrote it: Unipile says so (`is_sender`), or the sender is our own account."""
    if payload.get("is_sender") is True:
        return True
    info = payload.get("account_info")
    ours = _opt_str(info, "user_id") if isinstance(info, dict) else None
    return sender_id == (ours or own_id())


def _lead(payload: dict[str, Any], sender: dict[str, Any], ours: bool, sender_id: str) -> LeadProfile:
    """The lead of the chat: the sender, or — for a message we wrote — the other party."""
    person = sender
    if ours:
        others = [
            attendee
            for attendee in map(object_of, list_of(payload, "attendees"))
            if _opt_str(attendee, "attendee_provider_id") not in {sender_id, None}
        ]
        if not others:
            # A chat we wrote in, naming nobody else: known by the chat until the lead writes.
            return LeadProfile(provider_id=f"chat:{_str(payload, 'chat_id')}")
        person = others[0]
    return LeadProfile(
        provider_id=_str(person, "attendee_provider_id"),
        name=_opt_str(person, "attendee_name"),
        profile_url=_opt_str(person, "attendee_profile_url"),
    )


def _attachments(value: Any, message_id: str) -> tuple[list[Attachment], str]:
    """The files of a message, and a description for a message that is nothing but files."""
    if value is None:
        return [], ""
    items = [value] if isinstance(value, dict) else list_of({"attachments": value}, "attachments")
    attachments: list[Attachment] = []
    said: list[str] = []
    for item in map(object_of, items):
        kind = _KINDS.get(_opt_str(item, "type") or "", "document")
        if kind == "audio" and item.get("voice_note") in {True, "true"}:
            kind = "voice"
        name = _opt_str(item, "file_name") or _default_name(kind, _opt_str(item, "mimetype"))
        if item.get("unavailable") in {True, "true"}:
            said.append(f"[{kind} no longer available on LinkedIn: {name}]")
            continue
        mime_type = _opt_str(item, "mimetype") or "application/octet-stream"
        ref = {
            "message_id": message_id,
            "attachment_id": _str(item, "id"),
            "name": name,
            "mime_type": mime_type,
        }
        attachment = Attachment(kind=kind, name=name, mime_type=mime_type, ref=ref)
        size = item.get("file_size")
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            attachment["size"] = size
        attachments.append(attachment)
        said.append(f"[{kind}: {name}]" if _opt_str(item, "file_name") else f"[{kind}]")
    return attachments, " ".join(said)


def _default_name(kind: str, mime_type: str | None) -> str:
    extension = (mime_type or "").partition("/")[2].partition(";")[0] or "bin"
    return f"{kind}.{extension}"


def _time(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise MalformedDelivery(f"timestamp {value[:40]!r} has no time zone")
    return at


def _str(container: dict[str, Any], key: str) -> str:
    value = container[key]
    if not isinstance(value, str) or not value:
        raise MalformedDelivery(f"{key}: expected a non-empty string, got {type(value).__name__}")
    return value


def _opt_str(container: dict[str, Any], key: str) -> str | None:
    value = container.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedDelivery(f"{key}: expected a string, got {type(value).__name__}")
    return value
