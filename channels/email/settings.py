"""Email's settings section (DESIGN §5): two server URLs and our address.

`EMAIL_IMAP_URL` — `imaps://user:pass@host:993/INBOX` (TLS), `imap+starttls://…:143/INBOX`, or plain
`imap://…` (only sensible on localhost); the path names the folder to read (default INBOX).
`EMAIL_SMTP_URL` — `smtps://user:pass@host:465` (TLS), `smtp+starttls://…:587`, or plain `smtp://…:25`;
without a user part no AUTH is attempted.
`EMAIL_FROM` — our address, optionally with a display name: `Acme Sales <sales@acme.example>`.
Both URLs carry a password: they are read as secrets, and shown only through `ServerUrl.shown`.
User and password may be percent-encoded (`%40` for an `@` in a user name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator

from core.settings import Section

REQUIRED = ("EMAIL_IMAP_URL", "EMAIL_SMTP_URL", "EMAIL_FROM")

Security = Literal["tls", "starttls", "plain"]
_SCHEMES: dict[str, tuple[str, Security, int]] = {
    "imaps": ("imap", "tls", 993),
    "imap+starttls": ("imap", "starttls", 143),
    "imap": ("imap", "plain", 143),
    "smtps": ("smtp", "tls", 465),
    "smtp+starttls": ("smtp", "starttls", 587),
    "smtp": ("smtp", "plain", 25),
}


@dataclass(frozen=True)
class ServerUrl:
    """One mail server, read from its URL."""

    scheme: str
    security: Security
    host: str
    port: int
    user: str | None
    password: str = field(repr=False)
    path: str  # IMAP: the folder; SMTP: unused

    @property
    def shown(self) -> str:
        """The URL as typed, the password hidden: for logs and `threadline check`."""
        auth = f"{self.user}:***@" if self.user else ""
        path = f"/{self.path}" if self.path else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}{path}"


def parse_server_url(url: str, protocol: Literal["imap", "smtp"]) -> ServerUrl:
    """A ServerUrl, or ValueError whose message never contains the password."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    known = _SCHEMES.get(scheme)
    if known is None or known[0] != protocol:
        choices = ", ".join(f"{name}://" for name, (kind, _, _) in _SCHEMES.items() if kind == protocol)
        raise ValueError(f"must start with {choices}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    if not host:
        raise ValueError(f"names no host ({protocol}s://user:password@host:port)")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else ""
    folder = unquote(parts.path.lstrip("/")) or ("INBOX" if protocol == "imap" else "")
    return ServerUrl(scheme, known[1], host, port or known[2], user, password, folder)


class EmailSettings(Section):
    EMAIL_IMAP_URL: SecretStr | None = None
    EMAIL_SMTP_URL: SecretStr | None = None
    EMAIL_FROM: str | None = None
    # Where the server offers no IMAP IDLE: how often the mailbox is asked for new mail.
    EMAIL_POLL_SECONDS: Annotated[float, Field(gt=0)] = 60.0

    @field_validator("EMAIL_IMAP_URL")
    @classmethod
    def _imap(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_server_url(value.get_secret_value(), "imap")
        return value

    @field_validator("EMAIL_SMTP_URL")
    @classmethod
    def _smtp(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_server_url(value.get_secret_value(), "smtp")
        return value

    @field_validator("EMAIL_FROM")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            our_address(value)
        return value

    def missing(self) -> list[str]:
        return [name for name in REQUIRED if getattr(self, name) is None]

    @property
    def imap(self) -> ServerUrl:
        assert self.EMAIL_IMAP_URL is not None
        return parse_server_url(self.EMAIL_IMAP_URL.get_secret_value(), "imap")

    @property
    def smtp(self) -> ServerUrl:
        assert self.EMAIL_SMTP_URL is not None
        return parse_server_url(self.EMAIL_SMTP_URL.get_secret_value(), "smtp")

    @property
    def sender(self) -> Address:
        assert self.EMAIL_FROM is not None
        return our_address(self.EMAIL_FROM)


def our_address(value: str) -> Address:
    """`Name <user@domain>` or `user@domain` as an Address, or ValueError."""
    name, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("must be an email address, optionally with a name: Acme Sales <sales@acme.example>")
    return Address(display_name=name, username=local, domain=domain)
