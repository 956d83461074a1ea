"""Email against real mail servers (postfix + dovecot, tests/mailserver.py): replies out over SMTP,
mail in through the IMAP poller and the inbox — nothing lost or doubled when the connection breaks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from channels.email.adapter import EmailChannel
from channels.email.settings import EmailSettings
from core import inbox
from core.actions.health import do_record_account_health
from core.db import Database
from core.errors import ChannelBroken, PermanentDelivery, RetryableDelivery
from core.inbox import InboxRunner
from core.models import ChannelAccount, Health, Inbox, Message
from core.ports import AccountHealth, Outbound, ReportsHealth
from tests.mailserver import (
    BUSY,
    DOMAIN,
    LEAD_DOMAIN,
    REFUSED,
    CutProxy,
    MailServers,
    free_port,
    need_mail_servers,
    running_mail_servers,
)

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


def channel(
    servers: MailServers, *, imap_port: int | None = None, smtp_url: str | None = None
) -> EmailChannel:
    return EmailChannel(
        EmailSettings.load(
            EMAIL_IMAP_URL=servers.imap_url(port=imap_port),
            EMAIL_SMTP_URL=smtp_url or servers.smtp_url(),
            EMAIL_FROM=f"Acme Sales <{OURS}>",
        )
    )


def lead_mail(n: int, *, padding: int = 0, sender: str = JANE) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"Jane Doe <{sender}>"
    mail["To"] = f"sales+spring@{DOMAIN}"
    mail["Subject"] = f"Question {n}"
    mail["Message-ID"] = f"<q{n}@{LEAD_DOMAIN}>"
    mail.set_content(f"Question number {n}.\n" + "filler line\n" * padding + f"MARKER-{n}\nthe end\n")
    return mail


# --- out -----------------------------------------------------------------------------------------------


def test_a_reply_lands_in_the_leads_mailbox_threaded_under_their_mail(mail_servers: MailServers):
    email = channel(mail_servers)
    message_id = email.new_message_id()
    reply = Outbound(
        message_id=1,
        channel="email",
        channel_account=OURS,
        to=f"{JANE} <q1@{LEAD_DOMAIN}>",
        text="Hi Jane,\nyes, we ship to Lisbon.",
        subject="Question 1",
        in_reply_to=f"<q1@{LEAD_DOMAIN}>",
        references=(f"<q1@{LEAD_DOMAIN}>",),
        provider_message_id=message_id,
    )

    receipt = email.send(reply)

    assert receipt.provider_message_id == message_id
    [raw] = mail_servers.wait_for_mail(JANE, 1)
    got = message_from_bytes(raw, policy=policy.default)
    assert str(got["Message-ID"]) == message_id and str(got["From"]) == f"Acme Sales <{OURS}>"
    assert str(got["In-Reply-To"]) == f"<q1@{LEAD_DOMAIN}>"
    assert str(got["References"]) == f"<q1@{LEAD_DOMAIN}>"
    assert str(got["Subject"]) == "Re: Question 1"
    assert "we ship to Lisbon" in got.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert got.get_body(("html",)) is not None


def test_a_refused_login_marks_the_channel_broken(mail_servers: MailServers):
    wrong = mail_servers.smtp_url().replace("sales-imap-password", "wrong-password")
    with pytest.raises(ChannelBroken) as broken:
        channel(mail_servers, smtp_url=wrong).send(
            Outbound(message_id=1, channel="email", channel_account=OURS, to=f"{JANE} <q1@x>", text="hi")
        )
    assert "EMAIL_SMTP_URL" in broken.value.reason and "wrong-password" not in broken.value.reason


def test_an_unknown_recipient_is_a_permanent_failure_with_the_servers_words(mail_servers: MailServers):
    with pytest.raises(PermanentDelivery) as refused:
        channel(mail_servers).send(
            Outbound(
                message_id=1,
                channel="email",
                channel_account=OURS,
                to=f"{REFUSED} <q@x>",
                text="hi",
            )
        )
    assert "does not take mail" in refused.value.reason and REFUSED in refused.value.reason


def test_a_put_off_recipient_or_an_unreachable_server_is_worth_another_try(mail_servers: MailServers):
    reply = Outbound(message_id=1, channel="email", channel_account=OURS, to=f"{BUSY} <q@x>", text="hi")
    with pytest.raises(RetryableDelivery) as busy:
        channel(mail_servers).send(reply)
    assert "451" in busy.value.reason and "Try again later" in busy.value.reason
    closed = f"smtp://127.0.0.1:{free_port()}"
    with pytest.raises(RetryableDelivery) as unreachable:
        channel(mail_servers, smtp_url=closed).send(replace(reply, to=f"{JANE} <q@x>"))
    assert "could not be reached" in unreachable.value.reason


@pytest.mark.parametrize(("imap", "smtp"), [("imaps", "smtps"), ("imap+starttls", "smtp+starttls")])
def test_tls_and_starttls_both_ways(
    mail_servers: MailServers, monkeypatch: pytest.MonkeyPatch, imap: str, smtp: str
):
    monkeypatch.setenv("SSL_CERT_FILE", str(mail_servers.certificate))  # trust the servers' own certificate
    email = EmailChannel(
        EmailSettings.load(
            EMAIL_IMAP_URL=mail_servers.imap_url(scheme=imap),
            EMAIL_SMTP_URL=mail_servers.smtp_url(scheme=smtp),
            EMAIL_FROM=OURS,
        )
    )
    assert [line.state for line in email.health()] == ["ok", "ok"]
    email.send(Outbound(message_id=1, channel="email", channel_account=OURS, to=f"{JANE} <q@x>", text="hi"))
    assert len(mail_servers.wait_for_mail(JANE, 1)) == 1


def test_a_certificate_nobody_vouches_for_is_a_broken_channel(mail_servers: MailServers):
    email = channel(mail_servers, smtp_url=mail_servers.smtp_url(scheme="smtps"))
    with pytest.raises(ChannelBroken) as broken:
        email.send(
            Outbound(message_id=1, channel="email", channel_account=OURS, to=f"{JANE} <q@x>", text="hi")
        )
    assert "certificate" in broken.value.reason


def test_health_logs_in_to_both_servers(mail_servers: MailServers):
    lines = channel(mail_servers).health()
    assert [line.state for line in lines] == ["ok", "ok"], lines
    assert all("password" not in line.detail for line in lines)


# --- in ------------------------------------------------------------------------------------------------


class Reading:
    """The poller running against the mailbox, storing into a real inbox as the web process does."""

    def __init__(self, db: Database, email: EmailChannel) -> None:
        self.db, self.email = db, email
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reading:
        async def accept(raw: bytes) -> None:
            await asyncio.to_thread(inbox.store, self.db, "email", raw)

        [poller] = self.email.pollers()
        self.task = asyncio.create_task(poller.run(accept, self.stop))
        return self

    async def __aexit__(self, *_: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)

    async def wait_stored(self, count: int) -> None:
        deadline = time.monotonic() + 20.0
        while stored(self.db) < count:
            assert self.task is not None and not self.task.done(), "the poller stopped"
            assert time.monotonic() < deadline, f"{stored(self.db)} of {count} mails stored"
            await asyncio.sleep(0.05)  # polling a condition

    def process(self) -> list[str]:
        InboxRunner(self.db, {"email": self.email.parse}, ai_available=False).run()
        with self.db.sessions() as session:
            return list(session.scalars(select(Message.provider_message_id).order_by(Message.id)))


def stored(db: Database) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Inbox)) or 0


async def test_new_mail_arrives_through_idle_and_is_marked_seen_once_stored(
    mail_servers: MailServers, db: Database
):
    email = channel(mail_servers)
    mail_servers.send(lead_mail(1), user=JANE)
    mail_servers.wait_for_mail(OURS, 1)
    async with Reading(db, email) as reading:
        await reading.wait_stored(1)  # the unseen mail that was waiting
        started = time.monotonic()
        await asyncio.to_thread(mail_servers.send, lead_mail(2), user=JANE)
        await reading.wait_stored(2)
        waited = time.monotonic() - started
    assert waited < 10, "IDLE tells at once; a poll would take EMAIL_POLL_SECONDS (60)"
    assert reading.process() == [f"<q1@{LEAD_DOMAIN}>", f"<q2@{LEAD_DOMAIN}>"]
    with mail_servers.mailbox(OURS) as box:
        assert sorted(box.search("UNSEEN")) == []


async def test_a_connection_cut_mid_fetch_loses_and_doubles_nothing(mail_servers: MailServers, db: Database):
    for n in (1, 2, 3):
        mail_servers.send(lead_mail(n, padding=2000), user=JANE)  # ~24 KB each: the FETCH spans reads
    mail_servers.wait_for_mail(OURS, 3)
    proxy = CutProxy(mail_servers.imap_port)
    proxy.cut_when(b"MARKER-2")  # halfway through the second mail's FETCH answer
    try:
        async with Reading(db, channel(mail_servers, imap_port=proxy.port)) as reading:
            await reading.wait_stored(3)
            await asyncio.to_thread(mail_servers.send, lead_mail(4), user=JANE)
            await reading.wait_stored(4)
    finally:
        proxy.close()
    assert proxy.cuts == 1 and proxy.connections >= 2
    assert reading.process() == [f"<q{n}@{LEAD_DOMAIN}>" for n in (1, 2, 3, 4)]


async def test_a_cut_after_storing_before_marking_seen_stores_the_mail_once(
    mail_servers: MailServers, db: Database
):
    mail_servers.send(lead_mail(1), user=JANE)
    mail_servers.wait_for_mail(OURS, 1)
    proxy = CutProxy(mail_servers.imap_port)
    proxy.cut_when(b"FLAGS (\\Seen)")  # the server's answer to marking the stored mail seen
    try:
        async with Reading(db, channel(mail_servers, imap_port=proxy.port)) as reading:
            await reading.wait_stored(1)
            deadline = time.monotonic() + 20
            while proxy.connections < 2:  # read again after the reconnect
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            await asyncio.to_thread(mail_servers.send, lead_mail(2), user=JANE)
            await reading.wait_stored(2)
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert reading.process() == [f"<q1@{LEAD_DOMAIN}>", f"<q2@{LEAD_DOMAIN}>"]


@pytest.mark.parametrize("crash", [False, True], ids=["restarted", "crashed"])
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # about IMAP, not the store
async def test_the_imap_server_going_away_under_idle_is_noticed_and_mail_is_read_again(
    mail_servers: MailServers, db: Database, crash: bool
):
    mail_servers.send(lead_mail(1), user=JANE)
    mail_servers.wait_for_mail(OURS, 1)
    async with Reading(db, channel(mail_servers)) as reading:
        await reading.wait_stored(1)
        with mail_servers.mailbox(OURS) as box:  # marked seen: the poller goes on to IDLE
            deadline = time.monotonic() + 10
            while box.search("UNSEEN"):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)  # polling a condition
        await asyncio.to_thread(mail_servers.stop_dovecot, crash=crash)  # a BYE, or not a word
        await asyncio.to_thread(mail_servers.start_dovecot)
        await asyncio.to_thread(mail_servers.send, lead_mail(2), user=JANE)
        await reading.wait_stored(2)  # in seconds, not at IDLE's renewal two minutes on
    assert reading.process() == [f"<q1@{LEAD_DOMAIN}>", f"<q2@{LEAD_DOMAIN}>"]


def test_a_file_in_a_mail_is_fetched_back_from_the_mailbox(mail_servers: MailServers, tmp_path: Path):
    mail = lead_mail(1)
    mail.add_attachment(b"%PDF-1.4 the quote", maintype="application", subtype="pdf", filename="quote.pdf")
    mail_servers.send(mail, user=JANE)
    [raw] = mail_servers.wait_for_mail(OURS, 1)
    email = channel(mail_servers)
    [inbound] = email.parse(raw).messages
    [attachment] = inbound.attachments

    fetched = email.fetch_file(attachment["ref"])

    assert (fetched.name, fetched.mime_type, fetched.content) == (
        "quote.pdf",
        "application/pdf",
        b"%PDF-1.4 the quote",
    )
    with pytest.raises(PermanentDelivery):
        email.fetch_file({"message_id": "<gone@lead.test>", "part": "1"})


async def test_without_idle_the_mailbox_is_polled(db: Database):
    need_mail_servers()
    with running_mail_servers(idle=False, smtp=False) as plain:
        email = EmailChannel(
            EmailSettings.load(
                EMAIL_IMAP_URL=plain.imap_url(),
                EMAIL_SMTP_URL="smtp://127.0.0.1:1",
                EMAIL_FROM=OURS,
                EMAIL_POLL_SECONDS=0.2,
            )
        )
        with plain.mailbox(OURS) as box:
            assert b"IDLE" not in box.capabilities()
        async with Reading(db, email) as reading:
            await asyncio.to_thread(plain.append, lead_mail(1), user=OURS)
            await reading.wait_stored(1)
            await asyncio.to_thread(plain.append, lead_mail(2), user=OURS)
            await reading.wait_stored(2)
    assert reading.process() == [f"<q1@{LEAD_DOMAIN}>", f"<q2@{LEAD_DOMAIN}>"]


async def read_until_reported(email: EmailChannel, db: Database) -> list[AccountHealth]:
    """Run the mailbox's poller, as the web process does, until it has said how the mailbox is."""
    reported: list[AccountHealth] = []

    async def report(health: AccountHealth) -> None:
        reported.append(health)
        await asyncio.to_thread(db.run, lambda session: do_record_account_health(session, health))

    async def accept(raw: bytes) -> None:
        await asyncio.to_thread(inbox.store, db, "email", raw)

    [poller] = email.pollers()
    assert isinstance(poller, ReportsHealth)
    poller.report_health_to(report)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(accept, stop))
    deadline = time.monotonic() + 20
    while not reported:
        assert time.monotonic() < deadline and not task.done()
        await asyncio.sleep(0.05)  # polling a condition
    stop.set()
    await asyncio.wait_for(task, 10)
    return reported


def mailbox_health(db: Database) -> tuple[Health, str | None] | None:
    with db.sessions() as session:
        row = session.scalars(
            select(ChannelAccount).where(ChannelAccount.channel == "email", ChannelAccount.account == OURS)
        ).first()
        return None if row is None else (row.health, row.reason)


async def test_a_refused_imap_login_marks_the_mailbox_broken_and_a_working_one_mends_it(
    mail_servers: MailServers, db: Database
):
    wrong = EmailChannel(
        EmailSettings.load(
            EMAIL_IMAP_URL=mail_servers.imap_url().replace("sales-imap-password", "wrong-password"),
            EMAIL_SMTP_URL=mail_servers.smtp_url(),
            EMAIL_FROM=OURS,
        )
    )
    [broken] = await read_until_reported(wrong, db)
    assert (broken.channel, broken.account, broken.ok) == ("email", OURS, False)
    state = mailbox_health(db)
    assert state is not None and state[0] == Health.BROKEN and "EMAIL_IMAP_URL" in (state[1] or "")
    assert "wrong-password" not in (state[1] or "")

    [working] = await read_until_reported(channel(mail_servers), db)
    assert working.ok
    state = mailbox_health(db)
    assert state is not None and state[0] == Health.OK
