"""The email adapter's pure parts: settings, reading a mail, writing a reply."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.email import build_mail, parse_mail
from channels.email.adapter import EmailChannel, load
from channels.email.outbound import reference_chain, reply_subject
from channels.email.settings import EmailSettings, parse_server_url
from core.errors import MalformedDelivery, PermanentDelivery, SettingsError
from core.models import DeliveryStatus
from core.ports import ChannelOff, NamesMessages, Outbound, OutboundFile

OURS = Address("Acme Sales", "sales", "acme.test")
IMAP = "imaps://sales%40acme.test:s3cret-imap@imap.acme.test:993/INBOX"
SMTP = "smtp+starttls://sales%40acme.test:s3cret-smtp@smtp.acme.test:587"


def mail(
    text: str = "Hello there",
    *,
    sender: str = "Jane Doe <Jane.Doe@Lead.TEST>",
    to: str = "sales@acme.test",
    subject: str = "Pricing question",
    message_id: str = "<m1@lead.test>",
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = "Tue, 01 Dec 2026 10:00:00 +0100"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


def parsed_one(message: EmailMessage):
    parsed = parse_mail(message.as_bytes(), ours=OURS)
    assert len(parsed.messages) == 1, parsed
    return parsed.messages[0]


# --- settings ----------------------------------------------------------------------------------------


def test_all_three_unset_turns_the_channel_off(monkeypatch: pytest.MonkeyPatch):
    for name in ("EMAIL_IMAP_URL", "EMAIL_SMTP_URL", "EMAIL_FROM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THREADLINE_ENV_FILE", "")
    off = load()
    assert isinstance(off, ChannelOff) and not off.misconfigured


def test_some_set_is_misconfigured_and_names_what_is_missing(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("THREADLINE_ENV_FILE", "")
    monkeypatch.setenv("EMAIL_IMAP_URL", IMAP)
    monkeypatch.delenv("EMAIL_SMTP_URL", raising=False)
    monkeypatch.delenv("EMAIL_FROM", raising=False)
    off = load()
    assert isinstance(off, ChannelOff) and off.misconfigured
    assert "EMAIL_SMTP_URL" in off.reason and "EMAIL_FROM" in off.reason


def test_urls_are_read_with_their_security_and_shown_without_the_password():
    imap = parse_server_url(IMAP, "imap")
    assert (imap.security, imap.host, imap.port, imap.user, imap.path) == (
        "tls",
        "imap.acme.test",
        993,
        "sales@acme.test",
        "INBOX",
    )
    assert imap.password == "s3cret-imap" and "s3cret" not in imap.shown and "s3cret" not in repr(imap)
    smtp = parse_server_url(SMTP, "smtp")
    assert (smtp.security, smtp.port) == ("starttls", 587)
    assert parse_server_url("imap://u:p@localhost", "imap").port == 143
    assert parse_server_url("imap+starttls://u:p@h/Leads", "imap").path == "Leads"
    assert parse_server_url("smtps://u:p@h", "smtp").port == 465
    assert parse_server_url("smtp://h", "smtp").user is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EMAIL_IMAP_URL", "pop3://u:hunter2@h"),
        ("EMAIL_IMAP_URL", "smtp://u:hunter2@h"),
        ("EMAIL_SMTP_URL", "imaps://u:hunter2@h"),
        ("EMAIL_SMTP_URL", "smtp://u:hunter2@h:99999"),
        ("EMAIL_FROM", "not an address"),
    ],
)
def test_a_bad_value_is_one_line_that_never_shows_the_password(name: str, value: str):
    with pytest.raises(SettingsError) as error:
        EmailSettings.load(**{name: value})
    assert name in str(error.value) and "hunter2" not in str(error.value)


def test_the_adapter_names_its_messages_before_sending():
    channel = EmailChannel(EmailSettings.load(EMAIL_IMAP_URL=IMAP, EMAIL_SMTP_URL=SMTP, EMAIL_FROM=str(OURS)))
    assert isinstance(channel, NamesMessages)
    first, second = channel.new_message_id(), channel.new_message_id()
    assert first != second and first.startswith("<") and first.endswith("@acme.test>")


# --- reading a mail ----------------------------------------------------------------------------------


def test_a_plain_mail_becomes_one_inbound_message_from_the_case_folded_sender():
    inbound = parsed_one(mail("Do you ship to Lisbon?"))
    assert inbound.channel == "email" and inbound.channel_account == "sales@acme.test"
    assert inbound.sender.provider_id == inbound.sender.email == "jane.doe@lead.test"
    assert inbound.sender.name == "Jane Doe"
    assert inbound.provider_message_id == "<m1@lead.test>"
    assert inbound.provider_thread_id == "jane.doe@lead.test <m1@lead.test>"
    assert inbound.text == "Do you ship to Lisbon?" and inbound.subject == "Pricing question"
    assert inbound.sent_at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert not inbound.automatic and inbound.full_text is None


def test_an_answer_joins_the_thread_of_its_root():
    answer = parsed_one(
        mail(
            "Yes please",
            message_id="<m3@lead.test>",
            In_Reply_To="<ours-2@acme.test>",
            References="<m1@lead.test> <ours-2@acme.test>",
        )
    )
    assert answer.provider_thread_id == "jane.doe@lead.test <m1@lead.test>"
    only_in_reply_to = parsed_one(mail("Yes", message_id="<m4@lead.test>", In_Reply_To="<m1@lead.test>"))
    assert only_in_reply_to.provider_thread_id == "jane.doe@lead.test <m1@lead.test>"


def test_quoted_history_and_signature_are_cut_for_slack_and_the_whole_mail_kept():
    text = (
        "Tuesday works for me.\n\nBest,\nJane\n--\nJane Doe | Lead Corp\n+1 555 0100\n\n"
        "On Mon, Nov 30, 2026 at 10:00 AM Acme Sales <sales@acme.test> wrote:\n"
        "> Would Tuesday suit you?\n> Ana\n"
    )
    inbound = parsed_one(mail(text))
    assert inbound.text == "Tuesday works for me."
    assert inbound.full_text is not None and "Would Tuesday suit you?" in inbound.full_text


def test_an_html_only_mail_is_shown_as_text_and_its_html_kept():
    message = EmailMessage()
    message["From"] = "jane@lead.test"
    message["To"] = "sales@acme.test"
    message["Message-ID"] = "<h1@lead.test>"
    message.set_content(
        "<html><body><p>Hi <b>there</b>,</p><p>What does it cost?</p></body></html>", subtype="html"
    )
    inbound = parsed_one(message)
    assert "Hi there," in inbound.text and "What does it cost?" in inbound.text
    assert "<b>there</b>" in (inbound.html or "") and "<b>" not in inbound.text


def test_the_plus_tag_of_our_address_is_the_campaign():
    assert parsed_one(mail(to="Acme <sales+spring-sale@ACME.test>")).campaign == "spring-sale"
    assert parsed_one(mail(to="sales@acme.test")).campaign is None
    assert parsed_one(mail(to="other+tag@acme.test")).campaign is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"X_Autoreply": "yes"},
        {"Precedence": "auto_reply"},
        {"Return_Path": "<>"},
        {"subject": "Out of Office: Pricing question"},
        {"subject": "Automatic reply: Pricing question"},
    ],
)
def test_automatic_replies_are_flagged(headers: dict[str, str]):
    inbound = parsed_one(mail("I am away until Monday.", **headers))
    assert inbound.automatic and inbound.kind == "auto_reply" and "away" in inbound.text


def test_auto_submitted_no_is_a_person():
    assert not parsed_one(mail(Auto_Submitted="no")).automatic


def test_attachments_are_named_with_a_ref_to_their_part():
    message = mail("See attached")
    message.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="quote.pdf")
    message.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="logo.png")
    inbound = parsed_one(message)
    assert [(a["kind"], a["name"], a["mime_type"], a["size"]) for a in inbound.attachments] == [
        ("document", "quote.pdf", "application/pdf", 13),
        ("image", "logo.png", "image/png", 9),
    ]
    assert inbound.attachments[0]["ref"] == {"message_id": "<m1@lead.test>", "part": "1"}
    assert inbound.text == "See attached"


def test_our_own_mail_in_the_mailbox_is_not_a_lead_message():
    assert parse_mail(mail(sender="Acme <SALES@acme.test>").as_bytes(), ours=OURS).messages == []


def test_a_mail_without_a_sender_is_malformed():
    message = mail()
    del message["From"]
    with pytest.raises(MalformedDelivery):
        parse_mail(message.as_bytes(), ours=OURS)


def test_a_mail_without_message_id_gets_a_stable_one():
    message = mail()
    del message["Message-ID"]
    first, again = parsed_one(message), parsed_one(message)
    assert first.provider_message_id == again.provider_message_id
    assert first.provider_message_id.startswith("<sha256:")


def dsn(action: str = "failed") -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@acme.test>\r\n"
        "To: sales@acme.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\nMessage-Id: <dsn1@acme.test>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mail.acme.test\r\n\r\n"
        f"Final-Recipient: rfc822; ghost@bounce.test\r\nAction: {action}\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <ghost@bounce.test>: Recipient address rejected\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "From: sales@acme.test\r\nTo: ghost@bounce.test\r\nMessage-ID: <ours-1@acme.test>\r\n"
        "--B--\r\n"
    ).encode()


def test_a_bounce_fails_our_mail_with_the_servers_reason():
    parsed = parse_mail(dsn(), ours=OURS)
    assert parsed.messages == []
    [update] = parsed.updates
    assert (update.channel, update.provider_message_id, update.status) == (
        "email",
        "<ours-1@acme.test>",
        DeliveryStatus.FAILED,
    )
    assert (
        update.error == "ghost@bounce.test: 550 5.1.1 <ghost@bounce.test>: Recipient address rejected (5.1.1)"
    )


def test_a_delay_notice_changes_nothing():
    assert parse_mail(dsn("delayed"), ours=OURS).updates == []


# --- writing a reply ---------------------------------------------------------------------------------


def outbound(**fields: object) -> Outbound:
    values: dict[str, object] = {
        "message_id": 7,
        "channel": "email",
        "channel_account": "sales@acme.test",
        "to": "jane@lead.test <m1@lead.test>",
        "text": "Hi Jane,\nTuesday it is. <b>not markup</b> & more",
        "subject": "Pricing question",
        "in_reply_to": "<m3@lead.test>",
        "references": ("<m1@lead.test>", "<ours-2@acme.test>", "<m3@lead.test>"),
        "provider_message_id": "<ours-7@acme.test>",
    }
    values.update(fields)
    return Outbound(**values)  # type: ignore[arg-type]


def test_a_reply_threads_under_the_leads_mail_with_text_and_html():
    built = message_from_bytes(
        build_mail(outbound(), OURS, "<ours-7@acme.test>").as_bytes(), policy=policy.default
    )
    assert str(built["From"]) == "Acme Sales <sales@acme.test>" and str(built["To"]) == "jane@lead.test"
    assert str(built["Subject"]) == "Re: Pricing question"
    assert str(built["Message-ID"]) == "<ours-7@acme.test>"
    assert str(built["In-Reply-To"]) == "<m3@lead.test>"
    assert str(built["References"]).split() == ["<m1@lead.test>", "<ours-2@acme.test>", "<m3@lead.test>"]
    plain = built.get_body(("plain",))
    rich = built.get_body(("html",))
    assert plain is not None and "Tuesday it is. <b>not markup</b> & more" in plain.get_content()
    assert rich is not None and "&lt;b&gt;not markup&lt;/b&gt; &amp; more" in rich.get_content()
    assert "Hi Jane,<br>" in rich.get_content()


def test_a_reply_carries_the_reps_files():
    files = (OutboundFile("offer.pdf", "application/pdf", b"%PDF-1.4 offer"),)
    built = build_mail(outbound(files=files), OURS, "<x@acme.test>")
    [attached] = list(built.iter_attachments())
    assert attached.get_filename() == "offer.pdf" and attached.get_content() == b"%PDF-1.4 offer"


def test_subjects_are_not_re_re():
    assert reply_subject("Pricing") == "Re: Pricing"
    assert reply_subject("RE: Pricing") == "RE: Pricing"
    assert reply_subject("AW: Preise") == "AW: Preise"
    assert reply_subject(None) == "Re:"
    assert reply_subject("a\r\n b") == "Re: a b"


def test_references_start_at_the_root_skip_repeats_and_odd_ids_and_stay_short():
    assert reference_chain("<r@x>", ["<r@x>", "<a@x>", "wamid.123", "<a@x>"]) == ["<r@x>", "<a@x>"]
    long = reference_chain("<r@x>", [f"<{n}@x>" for n in range(100)])
    assert len(long) == 20 and long[0] == "<r@x>" and long[-1] == "<99@x>"


def html_mail(markup: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "jane@lead.test"
    message["To"] = "sales@acme.test"
    message["Message-ID"] = "<html-reply@lead.test>"
    message.set_content(markup, subtype="html")
    return message


def test_an_html_gmail_answer_is_cut_at_its_quote():
    inbound = parsed_one(
        html_mail(
            '<div dir="ltr">Sounds good, see you Tuesday.<br><br>Jane</div><br><div class="gmail_quote">'
            '<div class="gmail_attr">On Mon, Nov 30, 2026 at 10:00 AM Acme Sales &lt;sales@acme.test&gt; '
            'wrote:<br></div><blockquote class="gmail_quote">Would Tuesday suit you?<br>Ana</blockquote></div>'
        )
    )
    assert "Sounds good, see you Tuesday." in inbound.text and "Would Tuesday" not in inbound.text
    assert inbound.full_text is not None and "Would Tuesday suit you?" in inbound.full_text


def test_an_html_outlook_answer_is_cut_at_its_header_block():
    inbound = parsed_one(
        html_mail(
            "<html><body><p>Yes, please send the contract.</p><div><p><b>From:</b> Acme Sales "
            "&lt;sales@acme.test&gt;<br><b>Sent:</b> Monday, November 30, 2026 10:00 AM<br><b>To:</b> Jane"
            "<br><b>Subject:</b> Offer</p></div><p>Here is our offer.</p></body></html>"
        )
    )
    assert inbound.text == "Yes, please send the contract."


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "From",
                    "To",
                    "Subject",
                    "Message-ID",
                    "References",
                    "In-Reply-To",
                    "Date",
                    "Content-Type",
                    "Content-Transfer-Encoding",
                    "Content-Disposition",
                    "Auto-Submitted",
                    "Return-Path",
                ]
            ),
            st.text(max_size=60),
        ),
        max_size=10,
    ),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        [
            "",
            "multipart/mixed; boundary=B",
            "multipart/report; report-type=delivery-status; boundary=B",
            "text/html; charset=no-such-charset",
            "message/rfc822",
        ]
    ),
)
def test_any_mail_reads_or_is_refused_as_malformed_never_a_crash(
    headers: list[tuple[str, str]], body: bytes, content_type: str
):
    raw = b"From: someone@lead.test\r\n" + b"".join(
        f"{name}: {value}\r\n".encode("utf-8", "surrogatepass") for name, value in headers
    )
    if content_type:
        raw += f"Content-Type: {content_type}\r\n".encode()
    raw += (
        b"\r\n"
        + body
        + b"\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n--B--\r\n"
    )
    try:
        parsed = parse_mail(raw, ours=OURS)
    except MalformedDelivery:
        return
    for inbound in parsed.messages:
        assert inbound.provider_message_id and inbound.provider_thread_id.startswith(
            inbound.sender.provider_id
        )


def test_a_reply_that_cannot_be_a_mail_fails_for_good_before_any_server_is_asked():
    channel = EmailChannel(
        EmailSettings.load(EMAIL_IMAP_URL=IMAP, EMAIL_SMTP_URL="smtp://127.0.0.1:1", EMAIL_FROM=str(OURS))
    )
    with pytest.raises(PermanentDelivery) as refused:
        channel.send(outbound(to="x\r\nBcc: evil@x.test <m1@lead.test>"))
    assert "cannot be written as a mail" in refused.value.reason
