"""IMAP connections (imapclient) and reading one mail back from the mailbox.

imapclient is a well-kept, complete IMAP client: it parses the server's answers (UIDVALIDITY, UIDs,
FETCH data), speaks IDLE, and is synchronous, which fits both the poller (run in a thread) and
`fetch_file` (called from a worker).
"""

from __future__ import annotations

import logging
import ssl
from contextlib import suppress

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from channels.email.inbound import is_file, leaf_parts, part_bytes
from channels.email.settings import ServerUrl
from core.errors import ChannelBroken, PermanentDelivery, RetryableDelivery
from core.ports import FetchedFile

TIMEOUT = 60.0
BODY = b"BODY[]"

# imapclient traces the IMAP conversation at DEBUG: every line, whole mails included, and on a broken
# connection imaplib's log dump trips a formatting bug in imapclient's logger (a "--- Logging error ---"
# traceback). Threadline's DEBUG log says what it does itself; the protocol trace stays out.
logging.getLogger("imapclient.imaplib").setLevel(logging.INFO)


def connect(server: ServerUrl, *, timeout: float = TIMEOUT) -> IMAPClient:
    """A logged-in client (LoginError when the server refuses the user or password)."""
    context = ssl.create_default_context()
    client = IMAPClient(
        server.host,
        port=server.port,
        ssl=server.security == "tls",
        ssl_context=context if server.security == "tls" else None,
        timeout=timeout,
    )
    try:
        if server.security == "starttls":
            client.starttls(context)
        client.login(server.user or "", server.password)
    except BaseException:
        close(client)
        raise
    return client


def close(client: IMAPClient) -> None:
    """Log out if the connection still works; drop it either way."""
    with suppress(Exception):
        client.logout()
    with suppress(Exception):
        client.shutdown()


def fetch_part(server: ServerUrl, message_id: str, part: int) -> FetchedFile:
    """The `part`-th leaf part of the mail whose Message-ID is `message_id`, read from the mailbox."""
    try:
        client = connect(server)
    except LoginError:
        raise ChannelBroken(
            f"the mail server {server.host} refused our IMAP login: check EMAIL_IMAP_URL"
        ) from None
    except (IMAPClientError, OSError) as exc:
        raise RetryableDelivery(f"the mail server {server.host} could not be reached: {exc}") from None
    try:
        client.select_folder(server.path, readonly=True)
        uids = client.search(["HEADER", "Message-ID", message_id])
        if not uids:
            raise PermanentDelivery("the mail is no longer in the mailbox, so its file cannot be fetched")
        raw = client.fetch(uids[:1], [b"BODY.PEEK[]"]).get(uids[0], {}).get(BODY)
    except (IMAPClientError, OSError) as exc:
        raise RetryableDelivery(f"reading the mail from {server.host} failed: {exc}") from None
    finally:
        close(client)
    if not isinstance(raw, bytes):
        raise PermanentDelivery("the mail is no longer in the mailbox, so its file cannot be fetched")
    from email import message_from_bytes

    from channels.email.headers import POLICY

    parts = list(leaf_parts(message_from_bytes(raw, policy=POLICY)))
    if not 0 <= part < len(parts) or not is_file(parts[part]):
        raise PermanentDelivery("the mail in the mailbox no longer has that file")
    chosen = parts[part]
    name = chosen.get_filename() or (
        "message.eml" if chosen.get_content_type() == "message/rfc822" else f"file-{part}"
    )
    return FetchedFile(name=name, mime_type=chosen.get_content_type(), content=part_bytes(chosen))
