"""The mailbox reader: new mail, as it arrives, into the inbox (IMAP IDLE; polling where IDLE is missing).

Nothing lost: a mail is marked \\Seen only after `accept` returned, that is after the inbox committed
it; a mail whose storing failed stays unseen, the cursor does not pass it, and it is read again.
Nothing doubled: the inbox keeps one row per exact mail (a digest of its bytes, which IMAP returns
identically every time) and one message per Message-ID, so reading a mail twice — after a connection
dropped between storing and marking it seen, after a restart, from two web processes reading the same
mailbox — stores it once.

The cursor is in memory: the mailbox's UIDVALIDITY and the highest UID stored. When the process
starts, or the server says UIDVALIDITY changed (the UIDs we know mean nothing any more), reading
starts again from the mailbox's unseen mail; after that, new mail is found by UID, whether or not
someone marked it seen meanwhile. So the mailbox should be Threadline's own: mail that a person reads
(marks seen) while Threadline is stopped is not picked up when it starts.

A dropped or refused connection is tried again after 1 s, doubling up to BACKOFF_CAP; a refused
login is said once at ERROR (the password in EMAIL_IMAP_URL), and the poller keeps trying. Given a
reporter (core.ports.ReportsHealth), it also marks the mailbox broken in `channel_account` on a refused
login — Slack is told, `threadline check` and /metrics show it — and working again once a login works.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from imapclient import SEEN, IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from channels.email.imap import BODY, close, connect
from channels.email.inbound import CHANNEL
from channels.email.settings import ServerUrl
from core.ports import Accept, AccountHealth, ReportHealth

log = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0
BACKOFF_CAP = 60.0
IDLE_RENEW = 120.0  # renew often: a server may miss a mail that landed as IDLE began until the next look
IDLE_CHECK = 1.0  # how often an IDLE wakes to see whether the server is stopping
Deliver = Callable[[bytes], None]
Tell = Callable[[AccountHealth], None]
LOGIN_REFUSED = (
    "the mail server {host} refused Threadline's IMAP login: check the user and password in EMAIL_IMAP_URL"
)


@dataclass
class Cursor:
    uidvalidity: int | None = None
    last_uid: int = 0  # the highest UID stored; 0: start from the unseen mail


class ImapPoller:
    name = "email"

    def __init__(
        self,
        server: ServerUrl,
        *,
        account: str,
        poll_seconds: float = 60.0,
        connect_to: Callable[[ServerUrl], IMAPClient] = connect,
    ) -> None:
        self.server = server
        self.account = account  # our address: the channel account conversations and health are kept under
        self.poll_seconds = poll_seconds
        self._connect_to = connect_to
        self.cursor = Cursor()
        self._report: ReportHealth | None = None
        self._reported: bool | None = None  # the account's state as last reported (None: not yet)

    def report_health_to(self, report: ReportHealth) -> None:
        self._report = report

    async def run(self, accept: Accept, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        halt = threading.Event()

        async def store(raw: bytes) -> None:
            await accept(raw)

        def deliver(raw: bytes) -> None:  # from the reading thread: store it on the server's loop
            asyncio.run_coroutine_threadsafe(store(raw), loop).result()

        async def record(health: AccountHealth) -> None:
            if self._report is not None:
                await self._report(health)

        def tell(health: AccountHealth) -> None:
            try:
                asyncio.run_coroutine_threadsafe(record(health), loop).result()
            except Exception as exc:  # the database is away: said next time the state changes
                log.warning("email: could not record the mailbox's health (%s)", _said(exc))
                self._reported = None

        reading = asyncio.ensure_future(asyncio.to_thread(self.read_forever, deliver, halt, tell))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        halt.set()
        stopping.cancel()
        await reading

    # --- the reading thread ----------------------------------------------------------------------------

    def read_forever(
        self, deliver: Deliver, halt: threading.Event, tell: Tell = lambda _health: None
    ) -> None:
        failures = 0
        said_login = False
        while not halt.is_set():
            try:
                client = self._connect_to(self.server)
            except LoginError:
                if not said_login:
                    log.error(
                        "email: %s refused our IMAP login: check the user and password in EMAIL_IMAP_URL; "
                        "trying again every %.0f s",
                        self.server.shown,
                        BACKOFF_CAP,
                    )
                said_login = True
                self._tell(tell, ok=False, reason=LOGIN_REFUSED.format(host=self.server.host))
                failures = max(failures, 10)
            except Exception as exc:  # refused, unreachable, TLS, a server answering nonsense
                log.warning("email: cannot reach %s (%s)", self.server.shown, _said(exc))
            else:
                said_login, failures = False, 0
                self._tell(tell, ok=True)
                try:
                    self._session(client, deliver, halt)
                except (IMAPClientError, OSError) as exc:
                    log.warning(
                        "email: the connection to %s broke (%s); reconnecting", self.server.shown, _said(exc)
                    )
                except Exception as exc:  # storing failed (the database is away…): the mail stays unseen
                    log.warning("email: a mail could not be stored (%s); it is read again", _said(exc))
                finally:
                    close(client)
            delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2**failures)
            failures += 1
            halt.wait(delay)

    def _tell(self, tell: Tell, *, ok: bool, reason: str | None = None) -> None:
        if self._reported != ok:
            self._reported = ok
            tell(AccountHealth(CHANNEL, self.account, ok=ok, reason=reason))

    def _session(self, client: IMAPClient, deliver: Deliver, halt: threading.Event) -> None:
        folder = client.select_folder(self.server.path)
        uidvalidity = _number(folder.get(b"UIDVALIDITY"))
        cursor = self.cursor
        if cursor.uidvalidity != uidvalidity or uidvalidity is None:
            if cursor.uidvalidity is not None:
                log.warning(
                    "email: %s's UIDVALIDITY changed; reading its unseen mail again", self.server.shown
                )
            cursor.last_uid = 0
            self._read(client, sorted(client.search(["UNSEEN"])), deliver, halt)
            # Only once all unseen mail is stored does the cursor take over (a break before that reads
            # the unseen mail again, never the seen mail between).
            cursor.uidvalidity = uidvalidity
            uid_next = _number(folder.get(b"UIDNEXT"))
            if uid_next:  # from here on, new mail is found by UID
                cursor.last_uid = max(cursor.last_uid, uid_next - 1)
        idle = b"IDLE" in client.capabilities()
        log.info(
            "email: reading %s (%s)", self.server.shown, "IDLE" if idle else f"every {self.poll_seconds:g} s"
        )
        while not halt.is_set():
            newer = [
                uid for uid in client.search(["UID", f"{cursor.last_uid + 1}:*"]) if uid > cursor.last_uid
            ]
            self._read(client, sorted(newer), deliver, halt)
            if idle:
                self._idle(client, halt)
            else:
                halt.wait(self.poll_seconds)
                client.noop()

    def _read(self, client: IMAPClient, uids: list[int], deliver: Deliver, halt: threading.Event) -> None:
        for uid in uids:
            if halt.is_set():
                return
            raw = client.fetch([uid], [b"BODY.PEEK[]"]).get(uid, {}).get(BODY)
            if isinstance(raw, bytes):  # else expunged meanwhile
                deliver(raw)  # returns once the inbox has it
            self.cursor.last_uid = max(self.cursor.last_uid, uid)
            client.add_flags([uid], [SEEN])

    @staticmethod
    def _idle(client: IMAPClient, halt: threading.Event) -> None:
        client.idle()
        try:
            renew_at = time.monotonic() + IDLE_RENEW
            while not halt.is_set() and time.monotonic() < renew_at:
                if _already_received(client):  # ending IDLE reads it; the search after finds the mail
                    return
                answers = client.idle_check(timeout=IDLE_CHECK)
                if any(
                    isinstance(a, tuple) and len(a) > 1 and a[1] in (b"EXISTS", b"RECENT") for a in answers
                ):
                    return
                if any(isinstance(a, tuple) and a[:1] == (b"BYE",) for a in answers):
                    return  # the server is going away (a restart): ending IDLE finds the connection gone
                if not answers and _closed(client):
                    return  # it went away without a word (a crash, a reset): the same
        finally:
            client.idle_done()


def _already_received(client: IMAPClient) -> bool:
    """Whether the server's words are already read from the socket into the client's buffer.

    imapclient's `idle_check` waits on the socket only, so an `EXISTS` that arrived in the same packet
    as the server's "+ idling" (a mail landing just as IDLE began) would sit unseen in the buffer until
    the IDLE ends. Peeking at the buffer without blocking catches it.
    """
    sock = client.socket()
    sock.setblocking(False)
    try:
        return bool(client._imap.file.peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True  # the connection broke: ending IDLE says so
    finally:
        sock.setblocking(True)
        client._set_read_timeout()


def _closed(client: IMAPClient) -> bool:
    """Whether the server has closed the connection. imapclient's `idle_check` takes the end of the
    stream for silence and returns at once, so IDLE would spin on a dead socket until it is renewed.
    Peeks at the TCP stream itself (beneath any TLS), without taking anything from it."""
    sock = client.socket()
    sock.setblocking(False)
    try:
        return socket.socket.recv(sock, 1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)
        client._set_read_timeout()


def _number(value: object) -> int | None:
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, bytes) and value.isdigit() else None


def _said(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
