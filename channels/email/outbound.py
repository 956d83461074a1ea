"""A rep's reply as a mail, sent over SMTP (plain, STARTTLS or TLS, with AUTH when the URL has a user).

The mail answers the lead's thread the way mail clients thread: `In-Reply-To` the lead's latest
message, `References` from the thread's root through the conversation's earlier messages, and the
subject `Re: <the lead's subject>`. It carries the text as typed plus an HTML alternative, and the
rep's files as attachments. Its `Message-ID` is the one core stored before the send began
(`new_message_id`): a retry sends the same id again, so a mail client that got the first copy keeps
one.

SMTP's answers become core's kinds: a 4xx or a dropped connection is worth retrying; a 5xx about the
recipient or the content is permanent, with the server's words as the reason; a refused login, a
refused sender address or a TLS failure means the channel needs a person (`ChannelBroken`). Once the
whole mail has gone to the server (the lone "." that ends DATA), a connection lost or timed out before
its answer leaves unknown whether the server took it (RFC 1047): that is not retried blind but failed
as an unknown outcome, for a person to Retry.
"""

from __future__ import annotations

import html
import logging
import smtplib
import ssl
from collections.abc import Iterable
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from channels.email.inbound import CHANNEL, address_of_thread, root_of_thread
from channels.email.settings import ServerUrl
from core.errors import UNKNOWN_OUTCOME_CODE, ChannelBroken, PermanentDelivery, RetryableDelivery
from core.models import utcnow
from core.ports import Outbound, PartSent, SendReceipt, ignore_part

log = logging.getLogger(__name__)

TIMEOUT = 30.0
UNKNOWN_OUTCOME = (
    "The mail server did not answer after taking the whole mail, so it may or may not have reached the "
    "lead. Retry to send it again (with the same Message-ID: most mail programs then show one copy)."
)
MAX_REFERENCES = 20  # the root plus the latest ones: enough for every client to thread
_REPLY_PREFIXES = ("re:", "aw:", "sv:", "r:", "antw:", "réf:", "rif:")


class EmailSender:
    name = CHANNEL

    def __init__(self, server: ServerUrl, sender: Address, *, timeout: float = TIMEOUT) -> None:
        self.server = server
        self.sender = sender
        self.timeout = timeout

    def new_message_id(self) -> str:
        """A fresh `<…@our domain>` Message-ID (NamesMessages): core stores it before sending."""
        return make_msgid(domain=self.sender.domain)

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        message_id = message.provider_message_id or self.new_message_id()
        recipient = address_of_thread(message.to)
        try:
            mail = build_mail(message, self.sender, message_id)
        except (ValueError, TypeError, HeaderParseError) as exc:  # an address or header mail cannot carry
            raise PermanentDelivery(f"this reply cannot be written as a mail to {recipient}: {exc}") from None
        smtp: _SMTP | None = None
        try:
            with self.connect() as smtp:
                smtp.send_message(mail, from_addr=self.sender.addr_spec, to_addrs=[recipient])
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelBroken(
                f"the mail server {self.server.host} refused our login ({_said(exc)}): "
                "check the user and password in EMAIL_SMTP_URL"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ChannelBroken(
                f"the mail server {self.server.host} cannot do what EMAIL_SMTP_URL asks: {exc}"
            ) from None
        except smtplib.SMTPSenderRefused as exc:
            if exc.smtp_code >= 500:
                raise ChannelBroken(
                    f"the mail server refused to send as {self.sender.addr_spec} ({_said(exc)}): "
                    "check EMAIL_FROM and the account in EMAIL_SMTP_URL"
                ) from None
            raise RetryableDelivery(f"the mail server put us off: {_said(exc)}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            code, said = next(iter(exc.recipients.values()), (550, b""))
            reason = f"the mail server refused {recipient}: {code} {said.decode(errors='replace')}".strip()
            if code >= 500:
                raise PermanentDelivery(reason) from None
            raise RetryableDelivery(reason) from None
        except smtplib.SMTPResponseException as exc:  # DATA refused, or another command
            if exc.smtp_code >= 500:
                raise PermanentDelivery(f"the mail server refused the mail: {_said(exc)}") from None
            raise RetryableDelivery(f"the mail server put us off: {_said(exc)}") from None
        except ssl.SSLCertVerificationError as exc:
            raise ChannelBroken(
                f"the mail server {self.server.host}'s certificate was not trusted: {exc.verify_message}"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, dropped, TLS broke
            if smtp is not None and smtp.mail_handed_over:  # the server may have queued it already
                raise PermanentDelivery(UNKNOWN_OUTCOME, code=UNKNOWN_OUTCOME_CODE) from None
            raise RetryableDelivery(
                f"the mail server {self.server.host}:{self.server.port} could not be reached: "
                f"{exc or type(exc).__name__}"
            ) from None
        log.info("email %s sent to %s through %s", message_id, recipient, self.server.host)
        return SendReceipt(message_id)

    def connect(self) -> _SMTP:
        """A connection to the SMTP server, secured and logged in as EMAIL_SMTP_URL says."""
        server = self.server
        context = ssl.create_default_context()
        smtp: _SMTP
        if server.security == "tls":
            smtp = _SMTPOverTLS(server.host, server.port, timeout=self.timeout, context=context)
        else:
            smtp = _SMTP(server.host, server.port, timeout=self.timeout)
        try:
            if server.security == "starttls":
                smtp.starttls(context=context)
            if server.user:
                smtp.login(server.user, server.password)
        except BaseException:
            smtp.close()
            raise
        return smtp


class _SMTP(smtplib.SMTP):
    """smtplib's client, noting when the whole mail has gone to the server (DATA's closing "." sent):
    from then on the server may have taken it, whether or not its answer ever comes."""

    mail_handed_over = False

    def send(self, s: str | bytes) -> None:  # type: ignore[override]
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):  # smtplib.SMTP.data sends it so
            self.mail_handed_over = True


class _SMTPOverTLS(_SMTP, smtplib.SMTP_SSL):
    pass


def build_mail(message: Outbound, sender: Address, message_id: str) -> EmailMessage:
    """The mail for one reply: headers that thread it, text plus HTML, the rep's files attached."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = address_of_thread(message.to)
    mail["Subject"] = reply_subject(message.subject)
    mail["Date"] = format_datetime(utcnow())
    mail["Message-ID"] = message_id
    if message.in_reply_to:
        mail["In-Reply-To"] = message.in_reply_to
    references = reference_chain(root_of_thread(message.to), message.references)
    if references:
        mail["References"] = " ".join(references)
    mail.set_content(message.text)
    mail.add_alternative(as_html(message.text), subtype="html")
    for file in message.files:
        maintype, _, subtype = file.mime_type.partition("/")
        if not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        mail.add_attachment(file.content, maintype=maintype, subtype=subtype, filename=file.name)
    return mail


def reply_subject(subject: str | None) -> str:
    """`Re: <subject>` once, never `Re: Re: …`; a lead's mail without a subject gets a plain `Re:`."""
    subject = " ".join((subject or "").split())  # unfolded: a header value never carries a line break
    if subject.casefold().startswith(_REPLY_PREFIXES):
        return subject
    return f"Re: {subject}".strip()


def reference_chain(root: str | None, earlier: Iterable[str]) -> list[str]:
    """The thread's root, then the conversation's message ids (only well-formed `<…>` ones), no
    repeats, at most MAX_REFERENCES (the root and the latest)."""
    chain = [ref for ref in dict.fromkeys([*([root] if root else []), *earlier]) if _is_message_id(ref)]
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return chain


def as_html(text: str) -> str:
    """The reply as HTML: the same text, escaped, line breaks kept."""
    body = "<br>\n".join(html.escape(line) for line in text.split("\n"))
    return f'<!DOCTYPE html>\n<html><body><div dir="auto">{body}</div></body></html>\n'


def _is_message_id(value: str) -> bool:
    return (
        value.startswith("<") and value.endswith(">") and "@" in value and not any(c.isspace() for c in value)
    )


def _said(exc: smtplib.SMTPResponseException) -> str:
    error = exc.smtp_error
    text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    return f"{exc.smtp_code} {text}".strip()
