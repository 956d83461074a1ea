"""Whatever a sender puts in a mail, reading it gives a message or says clearly why not, in bounded
memory: `parse_mail` returns Parsed or raises MalformedDelivery (the inbox parks the delivery with that
reason) — never another exception, never a parse that grows with the square of a header.

Cases: malformed and giant headers, encoded-word abuse, unknown and lying charsets, undecodable bytes,
broken transfer encodings, huge bodies, deep nesting, thousands of parts, HTML bombs, a zip bomb as an
attachment (which must never be inflated). Hypothesis builds random mails and mangles real ones;
THREADLINE_FUZZ_EXAMPLES sets the cases per property (see README, Development).
"""

from __future__ import annotations

import base64
import io
import os
import tracemalloc
import zipfile
import zlib
from email.headerregistry import Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.email.headers import MAX_HEADER_CHARS
from channels.email.inbound import MAX_CONTAINERS, MAX_PARTS, MAX_SCAN_CHARS, parse_mail
from core.errors import MalformedDelivery
from core.ports import Inbound, Parsed

OURS = Address("Acme Sales", "sales", "acme.test")
EXAMPLES = int(os.environ.get("THREADLINE_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MB = 1024 * 1024


def head(content_type: str = "text/plain; charset=utf-8", extra: str = "") -> bytes:
    return (
        "From: Jane <jane@lead.test>\r\nTo: sales@acme.test\r\nSubject: Hello\r\n"
        f"Message-ID: <m1@lead.test>\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n{extra}\r\n"
    ).encode()


def read(raw: bytes) -> Parsed | MalformedDelivery:
    """What the inbox gets from the parser: its outcome, or the reason it parks the delivery."""
    try:
        parsed = parse_mail(raw, ours=OURS)
    except MalformedDelivery as refused:
        assert str(refused)
        return refused
    for message in parsed.messages:
        assert isinstance(message.text, str) and message.sender.provider_id
    return parsed


def read_within(raw: bytes, megabytes: int) -> Parsed | MalformedDelivery:
    """`read`, asserting the parse never held more than `megabytes` beyond the mail itself."""
    tracemalloc.start()
    try:
        outcome = read(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < megabytes * MB + 3 * len(raw), f"parsing held {peak / MB:.0f} MB"
    return outcome


def one_message(outcome: Parsed | MalformedDelivery) -> Inbound:
    assert isinstance(outcome, Parsed) and len(outcome.messages) == 1, outcome
    return outcome.messages[0]


# --- named attacks --------------------------------------------------------------------------------------


def test_encoded_words_by_the_thousand_in_a_subject_are_read_in_bounded_memory():
    # Unbounded, the standard library's header parser took ~25 s and 5.8 GB on this Subject.
    words = b" ".join(b"=?utf-8?B?PCFjaGFubmVsPg==?=" for _ in range(20_000))
    raw = head().replace(b"Subject: Hello", b"Subject: " + words) + b"hi"
    message = one_message(read_within(raw, 64))
    assert message.subject is not None and message.subject.startswith("<!channel>")
    assert len(message.subject) <= MAX_HEADER_CHARS


@pytest.mark.parametrize(
    "name, value",
    [
        ("X-Giant", "a" * 3_000_000),
        ("References", " ".join(f"<id{n}@lead.test>" for n in range(100_000))),
        ("To", "<" * 200_000),
        ("Content-Type", "text/plain; " + "; ".join(f"p{n}=v" for n in range(1_000))),
        ("Date", "=?utf-8?Q?" + "=FF" * 100_000 + "?="),
    ],
)
def test_giant_headers_are_read_in_bounded_memory(name: str, value: str):
    raw = head(extra=f"{name}: {value}\r\n") + b"hello"
    if name == "Content-Type":
        raw = raw.replace(b"Content-Type: text/plain; charset=utf-8\r\n", b"")
    outcome = read_within(raw, 96)
    assert one_message(outcome).text == "hello"


def test_five_thousand_headers():
    raw = head(extra="".join(f"X-H{n}: =?utf-8?B?eA==?=\r\n" for n in range(5_000))) + b"hi"
    assert one_message(read_within(raw, 256)).text == "hi"


def nested(depth: int) -> bytes:
    inner = b"Content-Type: text/plain\r\n\r\ndeep inside\r\n"
    for level in reversed(range(depth)):
        boundary = f"b{level}".encode()
        inner = (
            b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n--" + boundary + b"\r\n"
            + inner + b"\r\n--" + boundary + b"--\r\n"
        )  # fmt: skip
    return b"From: Jane <jane@lead.test>\r\nMessage-ID: <deep@lead.test>\r\nMIME-Version: 1.0\r\n" + inner


def test_nesting_within_the_limit_is_read():
    assert one_message(read_within(nested(MAX_CONTAINERS - 1), 64)).text == "deep inside"


@pytest.mark.parametrize("depth", [MAX_CONTAINERS + 1, 5_000])
def test_nesting_deeper_than_any_mail_is_refused_before_parsing(depth: int):
    # Unbounded, 3 000 levels ended in a RecursionError after ~20 s inside the standard library.
    outcome = read_within(nested(depth), 16)
    assert isinstance(outcome, MalformedDelivery) and "multipart" in str(outcome)


def many_parts(count: int) -> bytes:
    part = (
        b"--XX\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=f.bin\r\n\r\nabc\r\n"
    )
    return (
        head("multipart/mixed; boundary=XX")
        + b"--XX\r\nContent-Type: text/plain\r\n\r\nsee files\r\n"
        + (part * count)
        + b"--XX--\r\n"
    )


def test_hundreds_of_files_are_all_listed():
    message = one_message(read_within(many_parts(100), 128))
    assert message.text == "see files" and len(message.attachments) == 100


def test_thousands_of_parts_are_refused_with_the_reason():
    outcome = read_within(many_parts(MAX_PARTS + 1), 32)
    assert isinstance(outcome, MalformedDelivery) and f"at most {MAX_PARTS} parts" in str(outcome)


def test_a_huge_body_is_kept_whole_and_its_new_part_found_from_the_top():
    quoted = b"> an old line of the thread\r\n" * 20_000  # 600 kB of quoted history
    raw = (
        head() + b"Yes, Tuesday works.\r\n\r\nOn Mon, 1 Dec 2026, Sales <sales@acme.test> wrote:\r\n" + quoted
    )
    message = one_message(read_within(raw, 200))
    assert message.text == "Yes, Tuesday works."
    assert message.full_text is not None and message.full_text.count("an old line") == 20_000


def test_one_line_of_five_megabytes():
    message = one_message(read_within(head() + b"a" * 5 * MB, 200))
    assert message.text.startswith("aaa") and len(message.text) <= MAX_SCAN_CHARS


@pytest.mark.parametrize(
    "markup",
    [
        b"<div>" * 100_000 + b"deep",
        b"<table><tr><td>" * 20_000 + b"cell",
        b"<ul><li>" * 50_000 + b"item",
        b"<p>" + b"&amp;" * 500_000 + b"</p>",
        b"<script>" + b"x" * 2 * MB + b"</script><p>visible</p>",
        b"<!--" * 100_000 + b"<p>after comments</p>",
    ],
    ids=["divs", "tables", "lists", "entities", "script", "comments"],
)
def test_html_bombs_become_text_in_bounded_memory(markup: bytes):
    outcome = read_within(head("text/html; charset=utf-8") + markup, 400)
    assert isinstance(one_message(outcome).text, str)


def zip_bomb() -> bytes:
    """A small .zip (about 200 kB) that inflates to 200 MB: zeros compress a thousandfold."""
    buffer = io.BytesIO()
    archive = zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    with archive, archive.open("zeros.bin", "w", force_zip64=True) as member:
        for _ in range(200):
            member.write(bytes(MB))
    return buffer.getvalue()


def test_a_zip_bomb_attachment_is_kept_as_sent_and_never_inflated(monkeypatch: pytest.MonkeyPatch):
    bomb = zip_bomb()
    assert len(bomb) < MB

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the attachment was inflated")

    inflaters: list[tuple[object, str]] = [
        (zlib, "decompress"),
        (zlib, "decompressobj"),
        (zipfile, "ZipFile"),
    ]
    for module, name in inflaters:
        monkeypatch.setattr(module, name, never)
    encoded = base64.encodebytes(bomb)
    raw = (
        head("multipart/mixed; boundary=ZZ")
        + b"--ZZ\r\nContent-Type: text/plain\r\n\r\nthe files you asked for\r\n"
        + b"--ZZ\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n"
        + b'Content-Disposition: attachment; filename="report.zip"\r\n\r\n'
        + encoded
        + b"--ZZ--\r\n"
    )
    message = one_message(read_within(raw, 16))
    [attachment] = message.attachments
    assert (attachment["name"], attachment["mime_type"]) == ("report.zip", "application/zip")
    assert attachment["size"] == len(bomb)  # the bytes as sent, not what they would inflate to


@pytest.mark.parametrize(
    "content_type, body, expected",
    [
        ("text/plain; charset=x-nonsense", b"caf\xe9 \xff\xfe", "caf"),
        ("text/plain; charset=utf-8", b"caf\xe9 \xff ok", "ok"),
        ("text/plain; charset=utf-7", b"+AGEAYgBj-", "abc"),
        ('text/plain; charset=""', b"plain", "plain"),
        ("text/plain; charset=utf-16", b"\xff\xfeh\x00i\x00\x00\xd8", "h"),
        ("text/plain; charset=iso-2022-jp", b"\x1b$B\xff\xff\x1b(B after", "after"),
        ("text/html; charset=big5", b"<p>\x81\x30 fine</p>", "fine"),
    ],
)
def test_unknown_and_lying_charsets_are_read_as_far_as_they_can_be(
    content_type: str, body: bytes, expected: str
):
    assert expected in one_message(read(head(content_type) + body)).text


@pytest.mark.parametrize(
    "encoding, body",
    [
        ("base64", b"@@@not base64@@@\r\n===="),
        ("base64", b"QUJD" * 10 + b"="),
        ("quoted-printable", b"=ZZ=\r\n=4"),
        ("x-uuencode", b"begin 644 f\r\n#86)C\r\nend\r\n"),
        ("7bit", b"\x80\x81\x82 high bytes under 7bit"),
    ],
)
def test_broken_transfer_encodings_do_not_stop_reading(encoding: str, body: bytes):
    raw = head(extra=f"Content-Transfer-Encoding: {encoding}\r\n") + body
    assert isinstance(read(raw), Parsed)


def test_a_multipart_whose_body_is_not_parts_is_still_read():
    # Found by the property below: the standard library's get_body raised AttributeError on it.
    raw = (
        b'From: Jane <jane@lead.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="A"\r\n'
        b'\r\n--A\r\nContent-Type: multipart/related; boundary="A"\r\n\r\n\r\n'
    )
    assert one_message(read(raw)).text == ""


# --- random mails and mangled real ones ------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    ["From", "To", "Cc", "Subject", "Message-ID", "References", "In-Reply-To", "Date", "Content-Type",
     "Content-Transfer-Encoding", "Content-Disposition", "Auto-Submitted", "Return-Path", "X-Odd"]
)  # fmt: skip
ENCODED_WORDS = st.builds(
    lambda charset, kind, text: f"=?{charset}?{kind}?{text}?=",
    st.sampled_from(["utf-8", "x-unknown", "", "iso-8859-1", "utf-16", "utf-8*en"]),
    st.sampled_from(["B", "Q", "X", ""]),
    st.text(alphabet="=?ABCabc019+/_ \xff", max_size=20),
)
HEADER_VALUES = st.lists(st.text(max_size=30) | ENCODED_WORDS | st.sampled_from(["<", ">", "\"", "\\", ";"]),
                         max_size=6).map(" ".join)  # fmt: skip
CHARSETS = st.sampled_from(["utf-8", "us-ascii", "iso-8859-1", "utf-16", "x-nonsense", "", 'utf-8"', "big5"])
ENCODINGS = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "binary", "x-junk"])
TYPES = st.sampled_from(
    ["text/plain", "text/html", "application/zip", "image/png", "message/rfc822", "message/delivery-status",
     "multipart/report", "text/rfc822-headers", "nonsense", "application/octet-stream"]
)  # fmt: skip


@st.composite
def part(draw: st.DrawFn, depth: int = 0) -> bytes:
    if depth < 5 and draw(st.integers(0, 3)) == 0:
        boundary = draw(st.sampled_from(["A", "b--b", "", "x" * 80]))
        children = draw(st.lists(part(depth + 1), max_size=4))
        kind = draw(st.sampled_from(["mixed", "alternative", "related", "report", "digest"]))
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + child + b"\r\n" for child in children)
        if draw(st.booleans()):
            body += b"--" + boundary.encode() + b"--\r\n"
        header = f'Content-Type: multipart/{kind}; boundary="{boundary}"\r\n'
        return header.encode() + b"\r\n" + body
    lines = [f"Content-Type: {draw(TYPES)}; charset={draw(CHARSETS)}"]
    if draw(st.booleans()):
        lines.append(f"Content-Transfer-Encoding: {draw(ENCODINGS)}")
    if draw(st.booleans()):
        lines.append(f'Content-Disposition: attachment; filename="{draw(HEADER_VALUES)}"')
    body = draw(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace")))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@st.composite
def random_mail(draw: st.DrawFn) -> bytes:
    headers = [
        ("From", draw(st.sampled_from(["Jane <jane@lead.test>", "jane@lead.test", "<", "", "=?x?B?AA?="])))
    ]
    headers += draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8))
    top = b"".join(f"{name}: {value}\r\n".encode("utf-8", "surrogatepass") for name, value in headers)
    return top + b"MIME-Version: 1.0\r\n" + draw(part())


def mangled(raw: bytes) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(raw)
        for _ in range(draw(st.integers(1, 8))):
            where = draw(st.integers(0, max(len(data) - 1, 0)))
            action = draw(st.sampled_from(["flip", "cut", "insert", "drop"]))
            if action == "flip" and data:
                data[where] = draw(st.integers(0, 255))
            elif action == "cut":
                del data[where:]
            elif action == "insert":
                data[where:where] = draw(st.sampled_from([b"\r\n", b"\r\n\r\n", b"--", b"=?", b"\x00", b":"]))
            elif data:
                del data[where]
        return bytes(data)

    return build()


REAL = (
    head("multipart/alternative; boundary=ALT")
    + b"--ALT\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    + b"Caf=C3=A9 at 10?\r\n\r\nOn Mon, Sales <sales@acme.test> wrote:\r\n> Hi\r\n"
    + b"--ALT\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(b"<p>Caf\xc3\xa9 at 10?</p>")
    + b"--ALT--\r\n"
)


@FUZZ
@given(raw=random_mail() | mangled(REAL) | st.binary(max_size=500))
def test_any_mail_is_read_or_refused_with_a_reason(raw: bytes):
    read(raw)
