"""A teammate's files on a reply: fetched from Slack by the deliverer before the send (core.delivery).

The bytes come through a callable app/ builds on the bot's Slack client (`files.info` →
`url_private_download` with the bot token): core knows no Slack, adapters never talk to it. Fetching
happens outside any transaction and before the message is marked `sending`, so a file Slack cannot give
leaves the reply queued (retried) or failed with the reason, never half sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from core.errors import PermanentDelivery
from core.ports import MAX_FILE_BYTES, FetchedFile, OutboundFile

FetchSlackFile = Callable[[str], FetchedFile]  # a Slack file id → its bytes
ReplyFiles = tuple[OutboundFile, ...]


def no_slack_files(file_id: str) -> FetchedFile:
    raise PermanentDelivery("files from Slack cannot be fetched on this server")


def reply_files(
    attachments: Sequence[Any], fetch: FetchSlackFile, *, max_bytes: int = MAX_FILE_BYTES
) -> ReplyFiles:
    """Each attached file's bytes, in order; PermanentDelivery (with the file's name) for one that cannot
    go, RetryableDelivery passed on for one Slack may give later."""
    files = []
    for attachment in attachments:
        if not isinstance(attachment, dict):
            continue
        name = str(attachment.get("name") or "file")
        ref = attachment.get("ref") or {}
        file_id = ref.get("slack_file_id") if isinstance(ref, dict) else None
        if not file_id:
            raise PermanentDelivery(f"{name}: not a file shared in Slack")
        size = attachment.get("size")
        if isinstance(size, int) and size > max_bytes:
            raise PermanentDelivery(_too_big(name, size, max_bytes))
        fetched = fetch(str(file_id))
        if len(fetched.content) > max_bytes:
            raise PermanentDelivery(_too_big(name, len(fetched.content), max_bytes))
        if not fetched.content:
            raise PermanentDelivery(f"{name} is empty")
        mime_type = fetched.mime_type or str(attachment.get("mime_type") or "application/octet-stream")
        files.append(OutboundFile(fetched.name or name, mime_type, fetched.content))
    return tuple(files)


def _too_big(name: str, size: int, limit: int) -> str:
    return f"{name} is {size / 1_048_576:.1f} MB, more than the {limit // 1_048_576} MB Threadline sends"
