"""The email adapter: the channel port (core.ports) over an IMAP mailbox and an SMTP server."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping, Sequence

from imapclient.exceptions import IMAPClientError, LoginError

from channels.email.imap import close, connect, fetch_part
from channels.email.inbound import CHANNEL, parse_mail
from channels.email.outbound import EmailSender
from channels.email.poller import ImapPoller
from channels.email.settings import REQUIRED, EmailSettings
from core.errors import PermanentDelivery
from core.metrics import provider_call
from core.ports import (
    ChannelOff,
    FetchedFile,
    Health,
    Outbound,
    Parsed,
    PartSent,
    Poller,
    SendReceipt,
    Webhook,
    ignore_part,
    unconfigured,
)


class EmailChannel:
    name = CHANNEL

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        self.imap = settings.imap
        self.smtp = settings.smtp
        self.ours = settings.sender
        self._sender = EmailSender(self.smtp, self.ours)

    # --- inbound -------------------------------------------------------------------------------------

    def webhooks(self) -> Sequence[Webhook]:
        return []

    def pollers(self) -> Sequence[Poller]:
        account = self.ours.addr_spec.casefold()
        return [ImapPoller(self.imap, account=account, poll_seconds=self.settings.EMAIL_POLL_SECONDS)]

    def parse(self, body: bytes) -> Parsed:
        return parse_mail(body, ours=self.ours)

    def fetch_file(self, ref: Mapping[str, str]) -> FetchedFile:
        message_id, part = ref.get("message_id"), ref.get("part", "")
        if not message_id or not part.isdigit():
            raise PermanentDelivery("this file's reference names no mail part")
        return fetch_part(self.imap, message_id, int(part))

    # --- outbound ------------------------------------------------------------------------------------

    def new_message_id(self) -> str:
        return self._sender.new_message_id()

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        with provider_call("smtp"):
            return self._sender.send(message, on_part)

    # --- health --------------------------------------------------------------------------------------

    def health(self) -> Sequence[Health]:
        """Log in to both servers: proves the URLs, the passwords and the folder."""
        return [self._imap_health(), self._smtp_health()]

    def _imap_health(self) -> Health:
        shown = self.imap.shown
        try:
            client = connect(self.imap, timeout=15)
        except LoginError:
            return Health(
                "fail", "email IMAP", f"{shown} refused the login: check EMAIL_IMAP_URL's user and password"
            )
        except (IMAPClientError, OSError) as exc:
            return Health("fail", "email IMAP", f"{shown} unreachable: {exc or type(exc).__name__}")
        try:
            folder = client.select_folder(self.imap.path, readonly=True)
            idle = b"IDLE" in client.capabilities()
        except IMAPClientError as exc:
            return Health("fail", "email IMAP", f"{shown}: cannot open folder {self.imap.path!r}: {exc}")
        finally:
            close(client)
        count = folder.get(b"EXISTS", "?")
        how = "IDLE" if idle else f"no IDLE: polled every {self.settings.EMAIL_POLL_SECONDS:g} s"
        return Health("ok", "email IMAP", f"{shown}: logged in, {count} mails in {self.imap.path} ({how})")

    def _smtp_health(self) -> Health:
        shown = self.smtp.shown
        try:
            with self._sender.connect() as smtp:
                smtp.noop()
        except smtplib.SMTPAuthenticationError:
            return Health(
                "fail", "email SMTP", f"{shown} refused the login: check EMAIL_SMTP_URL's user and password"
            )
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            return Health("fail", "email SMTP", f"{shown} unreachable: {exc or type(exc).__name__}")
        return Health("ok", "email SMTP", f"{shown}: logged in; replies go out as {self.ours}")


def load() -> EmailChannel | ChannelOff:
    settings = EmailSettings.load()
    return unconfigured(CHANNEL, REQUIRED, settings.missing()) or EmailChannel(settings)
