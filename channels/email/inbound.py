"""A mail from the mailbox, read into core's values (`parse_mail`).

- The sender is the lead: the `From` address, case-folded, with its display name.
- The conversation is the mail thread on the lead's side: `provider_thread_id` is the lead's address
  and the thread's root Message-ID (the first of `References`, else `In-Reply-To`, else the mail's own
  Message-ID), so every answer in the thread joins it, and so the address to answer is at hand.
- The text shown in Slack is the new part only: HTML turned into text (inscriptis), then the quoted
  history and the signature cut off (mail-parser-reply, which knows the markers of many mail
  clients and languages). The whole mail stays with the message (`full_text`, and `html`).
- Files become attachments whose `ref` finds them again in the mailbox: the mail's Message-ID and the
  part's number among the mail's leaf parts (`fetch_file`).
- The campaign is the plus-tag of our address the lead wrote to: `sales+spring-sale@…` → `spring-sale`.
- Out-of-office and other automatic replies are shown but flagged `automatic`: not the lead answering.
- Delivery status notifications (bounces) are not lead messages: they become `DeliveryUpdate`s for
  the mail of ours they report on (channels.email.bounces).

Bounded whatever a sender writes: a header is parsed once, from its first 4 000 characters (2 000
for the MIME structure), and 20 of one name at most (channels.email.headers); a mail of more than
MAX_PARTS parts or MAX_CONTAINERS multipart containers (nesting) is refused as malformed (the
delivery is parked with that reason) before the parser walks it; quoted history is looked for in the
first MAX_SCAN_CHARS characters of the text only. Attachments are never opened: a zip's bytes are
counted and kept as sent, never inflated.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from inscriptis import get_text
from mailparser_reply import EmailReplyParser

from channels.email.bounces import delivery_updates, is_delivery_report
from channels.email.headers import POLICY, header, headers
from core.errors import MalformedDelivery
from core.ports import Attachment, Inbound, LeadProfile, Parsed

CHANNEL = "email"
# The languages whose reply markers ("On … wrote:", "Am … schrieb", "Le … a écrit"…) are recognised.
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "sv", "da", "pl", "cs"]
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
MAX_PARTS = 500  # a mail's parts (each declares its type); real mail has a handful, a few hundred at most
MAX_CONTAINERS = 100  # multipart parts, which also bounds how deep they nest
MAX_SCAN_CHARS = 64_000  # how much of the text the reply parser reads (its patterns are slow on megabytes)
_CONTENT_TYPE = re.compile(rb"^content-type:[ \t]*(\r?\n[ \t]+)*(multipart/)?", re.IGNORECASE | re.MULTILINE)
# Subjects mail servers and clients give automatic answers, for those that set no header saying so.
_AUTOMATIC_SUBJECTS = (
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto-reply",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "absence du bureau",
    "respuesta automática",
    "fuera de la oficina",
    "risposta automatica",
    "automatisch antwoord",
    "auto:",  # Exchange's prefix in some languages
)


def parse_mail(raw: bytes, *, ours: Address) -> Parsed:
    """One mail, as read from our mailbox, into what it says. MalformedDelivery if it is not a mail."""
    _refuse_too_many_parts(raw)
    mail = BytesParser(policy=POLICY).parsebytes(raw)
    assert isinstance(mail, EmailMessage)
    if is_delivery_report(mail):
        return Parsed(updates=delivery_updates(mail, CHANNEL))
    sender_name, sender_address = _sender(mail)
    if sender_address == ours.addr_spec.casefold():
        return Parsed()  # our own mail (a copy in the mailbox): not something a lead wrote
    message_id = _message_ids(header(mail, "Message-ID")) or [
        "<sha256:" + hashlib.sha256(raw).hexdigest() + ">"
    ]
    own_id = message_id[0]
    references = _message_ids(header(mail, "References"))
    in_reply_to = _message_ids(header(mail, "In-Reply-To"))
    root = (references or in_reply_to or [own_id])[0]

    full_text, original_html = _body(mail)
    shown = strip_quoted(full_text)
    subject = " ".join(header(mail, "Subject").split()) or None
    automatic = is_automatic(mail)
    return Parsed(
        messages=[
            Inbound(
                channel=CHANNEL,
                channel_account=ours.addr_spec.casefold(),
                provider_thread_id=thread_id(sender_address, root),
                provider_message_id=own_id,
                sender=LeadProfile(provider_id=sender_address, name=sender_name, email=sender_address),
                sent_at=_sent_at(mail),
                kind="auto_reply" if automatic else "text",
                text=shown,
                html=original_html,
                attachments=list(_attachments(mail, own_id)),
                campaign=plus_tag(mail, ours),
                subject=subject,
                full_text=full_text if full_text.strip() != shown.strip() else None,
                automatic=automatic,
            )
        ]
    )


# --- the conversation --------------------------------------------------------------------------------


def thread_id(address: str, root: str) -> str:
    """`jane@acme.example <root-id@host>`: who to answer, and which of their threads."""
    return f"{address} {root}"


def address_of_thread(thread: str) -> str:
    return thread.split(" ", 1)[0]


def root_of_thread(thread: str) -> str | None:
    _, _, root = thread.partition(" ")
    return root if _MESSAGE_ID.fullmatch(root) else None  # a root cut to fit the column is not sent


def plus_tag(mail: Message, ours: Address) -> str | None:
    """The tag of the first `ours+tag@domain` address the mail was sent to, or None."""
    fields = [
        value for name in ("To", "Cc", "Delivered-To", "X-Original-To") for value in headers(mail, name)
    ]
    local, domain = ours.username.casefold(), ours.domain.casefold()
    for _, address in getaddresses(fields):
        user, at, host = address.rpartition("@")
        base, plus, tag = user.partition("+")
        if at and plus and tag and base.casefold() == local and host.casefold() == domain:
            return tag
    return None


def is_automatic(mail: Message) -> bool:
    """An answer a machine sent (RFC 3834's Auto-Submitted, the common X- headers, known subjects)."""
    auto_submitted = header(mail, "Auto-Submitted").strip().casefold()
    if auto_submitted and auto_submitted != "no":
        return True
    if any(name in mail for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")):
        return True
    if header(mail, "Precedence").strip().casefold() == "auto_reply":
        return True
    if header(mail, "Return-Path").strip() == "<>":  # sent with no address to answer: a machine
        return True
    subject = " ".join(header(mail, "Subject").split()).casefold()
    return subject.startswith(_AUTOMATIC_SUBJECTS)


def _refuse_too_many_parts(raw: bytes) -> None:
    """MalformedDelivery for a mail of more parts, or more multipart containers, than any real one.

    Counted on the bytes, before parsing: the parser's own recursion and its per-part header parsing
    are what such a mail attacks. A part without a Content-Type line is not counted; nor does it cost.
    """
    parts = containers = 0
    for found in _CONTENT_TYPE.finditer(raw):
        parts += 1
        containers += found.group(2) is not None
    if parts > MAX_PARTS or containers > MAX_CONTAINERS:
        raise MalformedDelivery(
            f"the mail has {parts} parts, {containers} of them multipart; Threadline reads mail of at most "
            f"{MAX_PARTS} parts and {MAX_CONTAINERS} multipart ones"
        )


# --- the text ------------------------------------------------------------------------------------------


def strip_quoted(text: str) -> str:
    """The new part of a mail: quoted history and signature cut off; the whole text if nothing is left.
    Only the first MAX_SCAN_CHARS characters are read: the new part is at the top."""
    text = text[:MAX_SCAN_CHARS]
    if not text.strip():
        return ""
    replies = EmailReplyParser(languages=REPLY_LANGUAGES).read(text).replies
    newest = replies[0].body.strip() if replies else ""
    return newest or text.strip()


def html_to_text(markup: str) -> str:
    return str(get_text(markup)).strip()


def _body(mail: EmailMessage) -> tuple[str, str | None]:
    """(the mail's text, its HTML if it has some). The text is the plain part, else the HTML as text."""
    plain: Message | None
    rich: Message | None
    try:
        plain = mail.get_body(preferencelist=("plain",))
        rich = mail.get_body(preferencelist=("html",))
    except (AttributeError, TypeError):  # a multipart whose body is not parts: the stdlib trips on it
        found = [part for part in leaf_parts(mail) if part.get_content_type() == "text/plain"]
        plain, rich = (found[0] if found else None), None
    markup = _content_text(rich) if rich is not None else None
    if plain is not None:
        text = _content_text(plain)
    elif markup is not None:
        text = html_to_text(markup)
    else:
        text = ""
    return text.replace("\r\n", "\n").strip(), markup


def _content_text(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError, AssertionError):  # an unknown charset: read what can be read
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


# --- who and when --------------------------------------------------------------------------------------


def _sender(mail: Message) -> tuple[str | None, str]:
    name, address = parseaddr(header(mail, "From"))
    if "@" not in address:
        raise MalformedDelivery("the mail has no sender address (From)")
    return (name.strip() or None), address.strip().casefold()


def _message_ids(value: object) -> list[str]:
    return _MESSAGE_ID.findall(str(value)) if value is not None else []


def _sent_at(mail: Message) -> datetime:
    try:
        sent = parsedate_to_datetime(header(mail, "Date"))
    except (TypeError, ValueError, IndexError):
        return datetime.now(UTC)  # no readable Date: when we read it
    return sent.replace(tzinfo=UTC) if sent.tzinfo is None else sent


# --- files ---------------------------------------------------------------------------------------------


def leaf_parts(mail: Message) -> Iterator[Message]:
    """The mail's parts that are not containers, in order; an attached mail is one part."""
    if mail.get_content_maintype() == "multipart":
        for part in mail.get_payload():
            if isinstance(part, Message):
                yield from leaf_parts(part)
    else:
        yield mail


def is_file(part: Message) -> bool:
    """A part that is a file the lead sent, not the mail's text or an inline piece of its HTML."""
    disposition = part.get_content_disposition()
    if disposition == "attachment":
        return True
    if part.get_content_maintype() == "text" and part.get_filename() is None:
        return False
    return part.get_filename() is not None or part.get_content_type() == "message/rfc822"


def part_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        return inner.as_bytes() if isinstance(inner, Message) else b""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _attachments(mail: Message, message_id: str) -> Iterator[Attachment]:
    for number, part in enumerate(leaf_parts(mail)):
        if not is_file(part):
            continue
        mime_type = part.get_content_type()
        name = part.get_filename() or ("message.eml" if mime_type == "message/rfc822" else f"file-{number}")
        attachment = Attachment(
            kind=_kind(mime_type),
            name=name,
            mime_type=mime_type,
            ref={"message_id": message_id, "part": str(number)},
        )
        size = len(part_bytes(part))
        if size:
            attachment["size"] = size
        yield attachment


def _kind(mime_type: str) -> str:
    major = mime_type.split("/", 1)[0]
    return {"image": "image", "video": "video", "audio": "audio"}.get(major, "document")
