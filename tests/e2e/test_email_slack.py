"""Email in, Slack thread out, reply back — the whole app against real mail servers (postfix +
dovecot, tests/mailserver.py), on both runtimes: the mailbox is read through IMAP IDLE by the web
process, the rep's reply goes out over SMTP into the lead's mailbox, and a bounce comes back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.blocks import ids
from core.models import DeliveryStatus, Message
from tests.e2e.conftest import app_environment, running_app
from tests.e2e.harness import CHANNEL, AppProcess, message_event
from tests.e2e.test_whatsapp_slack import card_of, card_text, click, rep_says, thread
from tests.mailserver import (
    BOUNCE_DOMAIN,
    DOMAIN,
    LEAD_DOMAIN,
    USERS,
    CutProxy,
    MailServers,
    need_mail_servers,
    running_mail_servers,
)
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

RUNTIMES = ("celery-postgres",)  # one runtime is enough here: see tests/e2e/conftest.py

OURS = f"sales@{DOMAIN}"
JANE = f"jane@{LEAD_DOMAIN}"


@pytest.fixture(scope="module")
def servers() -> Iterator[MailServers]:
    need_mail_servers()
    with running_mail_servers() as running:
        yield running


@pytest.fixture
def mail_servers(servers: MailServers) -> MailServers:
    servers.clear()
    return servers


@contextmanager
def running_email_app(
    env: dict[str, str], servers: MailServers, log: Path, imap_port: int | None = None
) -> Iterator[AppProcess]:
    env = env | {
        "EMAIL_IMAP_URL": servers.imap_url(port=imap_port),
        "EMAIL_SMTP_URL": servers.smtp_url(),
        "EMAIL_FROM": f"Acme Sales <{OURS}>",
    }
    with running_app(env, log) as process:
        yield process
    logs = process.logs()
    assert not [password for password in USERS.values() if password in logs], "a mail password in the logs"
    assert "email: reading" in logs and "(IDLE)" in logs


@pytest.fixture
def app(
    runtime_env: dict[str, str],
    slack: SlackStandIn,
    graph: GraphStandIn,
    mail_servers: MailServers,
    tmp_path: Path,
) -> Iterator[AppProcess]:
    env = app_environment(runtime_env, slack, graph, tmp_path)
    with running_email_app(env, mail_servers, tmp_path / "threadline.log") as process:
        yield process


def lead_writes(
    servers: MailServers, text: str, *, sender: str = JANE, subject: str = "Shipping to Lisbon"
) -> str:
    mail = EmailMessage()
    mail["From"] = f"Jane Doe <{sender}>"
    mail["To"] = f"Acme <sales+spring-sale@{DOMAIN}>"
    mail["Subject"] = subject
    message_id = f"<{abs(hash((text, sender)))}@{LEAD_DOMAIN}>"
    mail["Message-ID"] = message_id
    mail.set_content(text)
    servers.send(mail, user=JANE)  # Jane's own mail account sends it
    return message_id


def card_ts(slack: SlackStandIn) -> str:
    return str(card_of(slack)["ts"])


def entry_text(entry: dict[str, object]) -> str:
    return str(entry["text"]) + json.dumps(entry.get("blocks"))


def test_a_leads_mail_arrives_in_slack_and_the_reply_lands_threaded_in_their_mailbox(
    app: AppProcess, slack: SlackStandIn, mail_servers: MailServers
):
    quoted = (
        "On Mon, Nov 30, 2026 at 9:00 AM Acme <sales@threadline.test> wrote:\n> Our catalogue is attached.\n"
    )
    root = lead_writes(mail_servers, f"Hi! Do you ship to Lisbon?\n\nThanks,\nJane\n\n{quoted}")

    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1 and len(thread(slack)) == 1, timeout=30)
    card = card_text(slack)
    assert "Jane Doe" in card and "Email" in card and "spring-sale" in card
    shown = entry_text(thread(slack)[0])
    assert "Do you ship to Lisbon?" in shown and "Our catalogue is attached" not in shown

    [button] = [
        element
        for block in thread(slack)[0]["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == ids.SHOW_FULL_MESSAGE
    ]
    click(app, slack, {**button, "block_id": ids.FULL_MESSAGE_BLOCK}, trigger_id=slack.issue_trigger_id())
    slack.wait_for(lambda: len(slack.opened_views) == 1)
    assert "Our catalogue is attached" in json.dumps(slack.opened_views[0])

    ts = rep_says(app, slack, "Hi Jane, yes &amp; for free.")

    [raw] = mail_servers.wait_for_mail(JANE, 1, timeout=30)
    reply = message_from_bytes(raw, policy=policy.default)
    assert str(reply["From"]) == f"Acme Sales <{OURS}>"
    assert str(reply["Subject"]) == "Re: Shipping to Lisbon"
    assert str(reply["In-Reply-To"]) == root and str(reply["References"]).split()[0] == root
    assert "yes & for free." in reply.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    slack.wait_for(lambda: "white_check_mark" in slack.reactions(CHANNEL, ts))
    with app.database() as db, db.sessions() as session:
        sent = session.scalars(select(Message).where(Message.slack_ts == ts)).one()
        assert sent.provider_message_id == str(reply["Message-ID"])

    # Jane answers from her mail program: the answer joins the same conversation and thread.
    answer = EmailMessage()
    answer["From"] = f"Jane Doe <{JANE}>"
    answer["To"] = str(reply["From"])
    answer["Subject"] = str(reply["Subject"])
    answer["Message-ID"] = f"<answer@{LEAD_DOMAIN}>"
    answer["In-Reply-To"] = str(reply["Message-ID"])
    answer["References"] = f"{reply['References']} {reply['Message-ID']}"
    answer.set_content("Great, ordering now.")
    mail_servers.send(answer, user=JANE)
    slack.wait_for(lambda: any("Great, ordering now." in entry_text(e) for e in thread(slack)), timeout=30)
    assert len(slack.messages(CHANNEL)) == 1 and "Open" in card_text(slack)


def test_a_bounce_marks_the_reply_failed_with_the_reason(
    app: AppProcess, slack: SlackStandIn, mail_servers: MailServers
):
    lead_writes(mail_servers, "Call me back?", sender=f"ghost@{BOUNCE_DOMAIN}", subject="Callback")
    slack.wait_for(lambda: len(thread(slack)) == 1, timeout=30)

    ts = rep_says(app, slack, "Sure, when suits you?")

    def notices() -> list[str]:
        return [entry_text(entry) for entry in thread(slack) if "Not delivered" in entry_text(entry)]

    slack.wait_for(lambda: "warning" in slack.reactions(CHANNEL, ts) and len(notices()) == 1, timeout=40)
    assert "No such mailbox here" in notices()[0], thread(slack)
    with app.database() as db, db.sessions() as session:
        failed = session.scalars(select(Message).where(Message.slack_ts == ts)).one()
        assert failed.delivery_status == DeliveryStatus.FAILED
        assert "No such mailbox here" in (failed.delivery_error or "")


def test_files_go_both_ways(app: AppProcess, slack: SlackStandIn, mail_servers: MailServers):
    mail = EmailMessage()
    mail["From"] = f"Jane Doe <{JANE}>"
    mail["To"] = OURS
    mail["Subject"] = "Our brief"
    mail["Message-ID"] = f"<brief@{LEAD_DOMAIN}>"
    mail.set_content("The brief is attached.")
    mail.add_attachment(b"%PDF-1.7 the brief", maintype="application", subtype="pdf", filename="brief.pdf")
    mail_servers.send(mail, user=JANE)

    slack.wait_for(
        lambda: len(thread(slack)) >= 1 and len(slack.thread_files(CHANNEL, card_ts(slack))) == 1, timeout=30
    )
    ((_, brief),) = slack.thread_files(CHANNEL, card_ts(slack))
    assert (brief.name, brief.content) == ("brief.pdf", b"%PDF-1.7 the brief")

    offer = slack.add_file("U0ANA", "offer.pdf", "application/pdf", b"%PDF-1.4 our offer")
    ts = slack.post_file_as_user(CHANNEL, "U0ANA", "Here is our offer", [offer], thread_ts=card_ts(slack))
    event = {
        **message_event(user="U0ANA", text="Here is our offer", ts=ts, thread_ts=card_ts(slack)),
        "subtype": "file_share",
        "files": [offer],
    }
    assert app.slack_event(event).status_code == 200

    [raw] = mail_servers.wait_for_mail(JANE, 1, timeout=30)
    reply = message_from_bytes(raw, policy=policy.default)
    [attached] = list(reply.iter_attachments())
    assert (attached.get_filename(), attached.get_content()) == ("offer.pdf", b"%PDF-1.4 our offer")
    assert "Here is our offer" in reply.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert str(reply["In-Reply-To"]) == f"<brief@{LEAD_DOMAIN}>"


def test_the_imap_connection_cut_mid_fetch_loses_and_doubles_nothing(
    runtime_env: dict[str, str],
    slack: SlackStandIn,
    graph: GraphStandIn,
    mail_servers: MailServers,
    tmp_path: Path,
):
    for n in (1, 2, 3):  # waiting in the mailbox when Threadline starts; 2 and 3 answer 1
        mail = EmailMessage()
        mail["From"] = f"Jane Doe <{JANE}>"
        mail["To"] = OURS
        mail["Subject"] = "Question" if n == 1 else "Re: Question"
        mail["Message-ID"] = f"<q{n}@{LEAD_DOMAIN}>"
        if n > 1:
            mail["References"] = f"<q1@{LEAD_DOMAIN}>"
        mail.set_content(f"Question {n}\n" + "more words\n" * 2000 + f"MARKER-{n}\n")
        mail_servers.send(mail, user=JANE)
    mail_servers.wait_for_mail(OURS, 3)
    proxy = CutProxy(mail_servers.imap_port)
    proxy.cut_when(b"MARKER-2")  # in the middle of the second mail's FETCH answer
    env = app_environment(runtime_env, slack, graph, tmp_path)
    try:
        with running_email_app(env, mail_servers, tmp_path / "threadline.log", imap_port=proxy.port) as app:
            slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1 and len(thread(slack)) == 3, timeout=40)
            assert [entry_text(entry).count("MARKER-") for entry in thread(slack)] == [1, 1, 1]
            assert ["Question 1" in entry_text(e) for e in thread(slack)] == [True, False, False]
            with app.database() as db, db.sessions() as session:
                assert len(session.scalars(select(Message.id)).all()) == 3
            with mail_servers.mailbox(OURS) as box:
                assert box.search("UNSEEN") == []
    finally:
        proxy.close()
    assert proxy.cuts == 1 and proxy.connections >= 2
