"""Process faults, with real processes: a worker SIGKILLed in the middle of a Slack post and of a send to
a lead, Redis stopped while leads keep writing on every channel, PostgreSQL restarted under traffic.

Each test counts what went in (leads' messages through the real webhooks and the real mail server, the
reps' replies as signed Slack events) and what came out (thread entries in the Slack stand-in, sends the
providers received) and asserts that nothing was lost and nothing doubled: exact counts, each text once,
in order where order is promised. Provider faults (Slack 429/5xx, provider errors) are elsewhere.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import exists, func, select

from bot.blocks import ids
from channels.sandbox import PATH as SANDBOX_PATH
from channels.sandbox import parse_contact, signed_message
from core import migrate
from core.db import Database
from core.delivery import UNKNOWN_OUTCOME
from core.models import Conversation, DeliveryStatus, Direction, Inbox, Message, Outbox
from tests.conftest import PostgresDatabases
from tests.e2e.conftest import SECRETS, app_environment
from tests.e2e.faults_support import (
    PrivatePostgres,
    cli,
    holding_graph,
    holding_slack,
    kill,
    private_postgres_fixture,  # noqa: F401 (a fixture)
    private_redis_fixture,  # noqa: F401 (a fixture)
    start_redis,
    stop,
    thread_post,
    wait_until,
    whatsapp_send,
)
from tests.e2e.harness import (
    CHANNEL,
    PHONE_NUMBER_ID,
    SIGNING_SECRET,
    AppProcess,
    block_action,
    message_event,
)
from tests.e2e.test_runtime import card_for, entries, rep_replies
from tests.e2e.test_whatsapp_slack import lead_writes
from tests.mailserver import (
    DOMAIN,
    LEAD_DOMAIN,
    USERS,
    MailServers,
    need_mail_servers,
    running_mail_servers,
)
from tests.standins import meta_webhooks as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn
from tests.standins.unipile import UnipileStandIn, attendee, message_webhook

UNIPILE_KEY, UNIPILE_SECRET, UNIPILE_ACCOUNT = "unipile-key-for-faults", "unipile-secret-for-faults", "acc-1"
LINKEDIN_CHAT, LINKEDIN_LEAD, LINKEDIN_US = (
    "chat-1",
    attendee("ACoAAJANE", "Jane Doe"),
    attendee("ACoAAUS", "Ana"),
)
MAIL_PASSWORDS = {f"mail password of {user}": password for user, password in USERS.items()}
LEASE_SECONDS = "3"  # a dead worker's claim frees after this; 60 s in production, the rule is the same
JANE, TOM = "15551234567", "15557654321"


@dataclass
class Deployment:
    """The app as a runtime runs it: `web` takes the requests; the worker is what a SIGKILL hits —
    the Celery worker process, or (embedded) the whole `threadline run`, worker threads and all."""

    web: AppProcess
    env: dict[str, str]
    log: Path
    worker: subprocess.Popen[bytes] | None = None

    @property
    def embedded(self) -> bool:
        return "REDIS_URL" not in self.env

    def kill_worker(self) -> None:
        kill(self.web.process if self.embedded else self.worker)

    def start_worker(self) -> None:
        if self.embedded:
            self.web.start()  # the same database file, the same port
        else:
            self.worker = cli(self.env, "worker", log=self.log, group=True)

    def logs(self) -> str:
        return self.web.logs() + (self.log.read_text(errors="replace") if self.log.exists() else "")


@contextmanager
def deployed(env: dict[str, str], tmp_path: Path) -> Iterator[Deployment]:
    run = Deployment(
        AppProcess(
            env=env, log_path=tmp_path / "web.log", command="run" if "REDIS_URL" not in env else "web"
        ),
        env,
        tmp_path / "worker.log",
    )
    if not run.embedded:
        database = Database(env["DATABASE_URL"])  # `threadline migrate`'s work, without a process to start
        migrate.upgrade(database.engine)
        database.dispose()
        run.start_worker()
    run.web.start()
    try:
        yield run
    finally:
        run.web.stop()
        if run.worker is not None and run.worker.poll() is None:
            stop(run.worker)
    logs = run.logs()
    assert "Traceback" not in logs, logs[-5000:]
    secrets = {**SECRETS, "Unipile key": UNIPILE_KEY, "Unipile secret": UNIPILE_SECRET, **MAIL_PASSWORDS}
    assert [name for name, secret in secrets.items() if secret in logs] == [], "secrets in the logs"


@contextmanager
def running_unipile() -> Iterator[UnipileStandIn]:
    standin = UnipileStandIn(api_key=UNIPILE_KEY, account_id=UNIPILE_ACCOUNT, own_provider_id="ACoAAUS")
    standin.start()
    standin.add_chat(LINKEDIN_CHAT)
    yield standin
    standin.stop()
    assert standin.violations == [], "the app made calls Unipile's API does not allow"


def linkedin_env(unipile: UnipileStandIn) -> dict[str, str]:
    return {
        "UNIPILE_API_URL": unipile.base_url,
        "UNIPILE_API_KEY": UNIPILE_KEY,
        "UNIPILE_ACCOUNT_ID": UNIPILE_ACCOUNT,
        "UNIPILE_WEBHOOK_SECRET": UNIPILE_SECRET,
    }


def linkedin_message(text: str, *, message_id: str, name: str = "Jane Doe") -> dict[str, Any]:
    return message_webhook(
        account_id=UNIPILE_ACCOUNT,
        chat_id=LINKEDIN_CHAT,
        message_id=message_id,
        text=text,
        sender=attendee("ACoAAJANE", name),
        attendees=[LINKEDIN_US],
    )


def post_linkedin(web: AppProcess, payload: dict[str, Any]) -> httpx.Response:
    headers = {"Content-Type": "application/json", "X-Unipile-Secret": UNIPILE_SECRET}
    return httpx.post(
        f"{web.url}/webhooks/linkedin", content=json.dumps(payload), headers=headers, timeout=10
    )


def sent_to(graph: GraphStandIn, wa_id: str) -> list[str]:
    return [s.body["text"]["body"] for s in graph.sent if s.to == wa_id]


@pytest.mark.parametrize("runtime_env", ["embedded-sqlite", "celery-postgres"], indirect=True)
def test_a_worker_killed_mid_post_and_mid_send_posts_once_and_never_resends_blind(
    runtime_env: dict[str, str], private_redis: tuple[int, list[subprocess.Popen[bytes]]], tmp_path: Path
):
    with holding_slack() as slack, holding_graph() as graph:
        env = app_environment(runtime_env, slack, graph, tmp_path) | {
            "THREADLINE_LEASE_SECONDS": LEASE_SECONDS
        }
        if "REDIS_URL" in env:  # a Redis of its own: the shared one's Celery database is every e2e test's
            port, servers = private_redis
            start_redis(port, servers)
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        with deployed(env, tmp_path) as run:
            # 1. Killed while Slack stores the thread entry: the post landed, its ts was never recorded.
            slack.hold(thread_post)
            lead_writes(run.web, "hello", message_id="wamid.k1", wa_id=JANE, name="Jane")
            slack.wait_for(lambda: slack.held == 1, timeout=30)
            run.kill_worker()
            slack.release()
            run.start_worker()
            lead_writes(run.web, "after the restart", message_id="wamid.k2", wa_id=JANE, name="Jane")
            lead_writes(run.web, "hi from Tom", message_id="wamid.t1", wa_id=TOM, name="Tom")
            jane, tom = card_for(slack, "Jane", timeout=60), card_for(slack, "Tom", timeout=60)
            slack.wait_for(lambda: len(entries(slack, jane)) >= 2 and entries(slack, tom), timeout=60)
            # The post whose answer was lost is found by its metadata, not posted again.
            assert entries(slack, jane) == ["hello", "after the restart"]
            assert entries(slack, tom) == ["hi from Tom"]
            assert len(slack.messages(CHANNEL)) == 2  # one card each

            # 2. Killed while Graph takes a reply: the lead may have it, nobody knows. Another reply waits
            # behind it in the same conversation; a third, to another lead, is written while no worker runs.
            graph.hold(whatsapp_send)
            rep_replies(run.web, slack, jane, "first reply")
            graph.wait_for(lambda: graph.held == 1, timeout=30)
            rep_replies(run.web, slack, jane, "second reply")  # its lane waits for the first to end
            run.kill_worker()
            graph.release()
            if run.embedded:  # the whole app went down: the next reply comes once it is back
                run.start_worker()
                rep_replies(run.web, slack, tom, "reply to Tom")
            else:  # the web still answers: the reply waits, stored, for a worker
                rep_replies(run.web, slack, tom, "reply to Tom")
                run.start_worker()

            def unknown_outcome_notices() -> list[dict[str, object]]:
                return [m for m in slack.replies(CHANNEL, jane) if "may or may not" in str(m["text"])]

            slack.wait_for(lambda: unknown_outcome_notices() != [], timeout=60)
            graph.wait_for(lambda: len(graph.sent) == 3, timeout=60)
            assert sent_to(graph, JANE) == ["first reply", "second reply"]  # in order, the first not again
            assert sent_to(graph, TOM) == ["reply to Tom"]

            def replies() -> list[Any]:
                with run.web.database() as db, db.sessions() as session:
                    return list(
                        session.execute(
                            select(Message.text, Message.delivery_status, Message.delivery_error)
                            .where(Message.direction == Direction.OUTBOUND)
                            .order_by(Message.id)
                        ).all()
                    )

            in_flight = {DeliveryStatus.QUEUED, DeliveryStatus.SENDING}
            wait_until(
                lambda: all(r.delivery_status not in in_flight for r in replies()), timeout=30, what="sends"
            )
            assert [(r.text, r.delivery_status) for r in replies()] == [
                ("first reply", DeliveryStatus.FAILED),
                ("second reply", DeliveryStatus.SENT),
                ("reply to Tom", DeliveryStatus.SENT),
            ]
            assert replies()[0].delivery_error == UNKNOWN_OUTCOME
            [notice] = unknown_outcome_notices()
            assert ids.RETRY_DELIVERY in str(notice["blocks"])  # the rep decides whether to send it again
        assert len(graph.sent) == 3


# --- PostgreSQL restarted ----------------------------------------------------------------------------

REFUSED_503 = "answered 503: database unavailable"


def card_button(slack: SlackStandIn, card_ts: str, action_id: str) -> dict[str, Any]:
    """The element on a card with this action_id, as Slack echoes it back on a click."""
    for block in slack.message(CHANNEL, card_ts).get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return {**element, "block_id": block.get("block_id", "")}
    raise AssertionError(f"no {action_id} on the card")


def test_a_postgres_restart_is_answered_503_then_the_retries_are_stored_once_and_nothing_half_written(
    private_postgres: PrivatePostgres,
    private_redis: tuple[int, list[subprocess.Popen[bytes]]],
    tmp_path: Path,
):
    port, servers = private_redis
    start_redis(port, servers)
    with holding_slack() as slack, holding_graph() as graph, running_unipile() as unipile:
        runtime = {"DATABASE_URL": private_postgres.url, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        env = app_environment(runtime, slack, graph, tmp_path) | linkedin_env(unipile)
        env["THREADLINE_LEASE_SECONDS"] = LEASE_SECONDS  # work the outage interrupted is taken again
        with deployed(env, tmp_path) as run:
            lead_writes(run.web, "before the restart", message_id="wamid.p1", wa_id=JANE, name="Jane")
            jane = card_for(slack, "Jane", timeout=60)
            slack.wait_for(lambda: entries(slack, jane) == ["before the restart"], timeout=30)

            # What each provider sends while the database is away; each will send the same again.
            whatsapp = meta.text_message(
                wa_id=JANE, name="Jane", text="during (whatsapp)", message_id="wamid.p2",
                phone_number_id=PHONE_NUMBER_ID,
            )  # fmt: skip
            linkedin = linkedin_message("during (linkedin)", message_id="li-p1")
            reply_ts = slack.post_as_user(CHANNEL, "U0ANA", "reply sent in the outage", thread_ts=jane)
            reply = message_event(user="U0ANA", text="reply sent in the outage", ts=reply_ts, thread_ts=jane)
            close = block_action(user="U0ANA", card_ts=jane, action=card_button(slack, jane, ids.CLOSE))

            def send_all(retry: int | None) -> list[int]:
                return [
                    run.web.whatsapp(whatsapp).status_code,
                    post_linkedin(run.web, linkedin).status_code,
                    run.web.slack_event(reply, event_id="EvOUTAGE1", retry_num=retry).status_code,
                    run.web.slack_interaction(close).status_code,
                ]

            private_postgres.stop()
            assert send_all(None) == [503, 503, 503, 503]  # nothing kept: every provider sends again
            wait_until(lambda: "database unavailable" in run.log.read_text(), timeout=30, what="the worker")
            private_postgres.start()  # web and worker go on with the same processes
            assert send_all(1) == [200, 200, 200, 200]  # the web took the restart without one of its own
            assert send_all(2)[:3] == [200, 200, 200]  # a second retry of each: kept once, not twice

            linkedin_lead = card_for(slack, "Jane Doe", timeout=60)
            slack.wait_for(lambda: entries(slack, linkedin_lead) == ["during (linkedin)"], timeout=60)
            slack.wait_for(lambda: "Closed" in str(slack.message(CHANNEL, jane)["blocks"]), timeout=60)
            graph.wait_for(lambda: len(graph.sent) == 1, timeout=60)

            def shown() -> list[str]:  # the lead's entries (the rep's own message is in the thread too)
                return [e for e in entries(slack, jane) if "reply sent" not in e]

            slack.wait_for(lambda: len(shown()) >= 2, timeout=60)
            assert shown() == ["before the restart", "during (whatsapp)"]
            assert sent_to(graph, JANE) == ["reply sent in the outage"]

            with run.web.database() as db, db.sessions() as session:
                counts = {
                    "inbox": session.scalar(select(func.count()).select_from(Inbox)),
                    "messages": session.scalar(select(func.count()).select_from(Message)),
                    "conversations without a message": session.scalar(
                        select(func.count())
                        .select_from(Conversation)
                        .where(~exists().where(Message.conversation_id == Conversation.id))
                    ),
                    "replies without their delivery": session.scalar(
                        select(func.count())
                        .select_from(Message)
                        .where(
                            Message.direction == Direction.OUTBOUND,
                            ~exists().where(Outbox.message_id == Message.id, Outbox.kind == "deliver"),
                        )
                    ),
                    "lead messages not in Slack": session.scalar(
                        select(func.count())
                        .select_from(Message)
                        .where(Message.direction == Direction.INBOUND, Message.slack_ts.is_(None))
                    ),
                }
            assert counts == {
                "inbox": 4,  # before, and one of each kind sent in the outage
                "messages": 4,  # 3 from leads, 1 reply
                "conversations without a message": 0,
                "replies without their delivery": 0,
                "lead messages not in Slack": 0,
            }
        assert len(graph.sent) == 1
    web_log = (tmp_path / "web.log").read_text()
    assert web_log.count(REFUSED_503) == 4, [line for line in web_log.splitlines() if "503" in line]


# --- Redis stopped while leads keep writing ----------------------------------------------------------

MAIL_LEAD = f"jane@{LEAD_DOMAIN}"
LEADS = {  # the name each card shows → what that lead writes, one channel each
    "Wanda": ["whatsapp 1", "whatsapp 2", "whatsapp 3"],
    "Linus": ["linkedin 1", "linkedin 2", "linkedin 3"],
    "Emma": ["email 1", "email 2", "email 3"],
    "Sandy": ["sandbox 1", "sandbox 2", "sandbox 3"],
}


def every_lead_writes(web: AppProcess, mail: MailServers, n: int) -> None:
    """Message number `n` of each lead, through each channel's real way in."""
    wanda, linus, emma, sandy = (texts[n - 1] for texts in LEADS.values())
    lead_writes(web, wanda, message_id=f"wamid.r{n}", wa_id=JANE, name="Wanda")
    assert post_linkedin(web, linkedin_message(linus, message_id=f"li-r{n}", name="Linus")).status_code == 200
    email = EmailMessage()
    email["From"], email["To"] = f"Emma <{MAIL_LEAD}>", f"sales@{DOMAIN}"
    email["Subject"], email["Message-ID"] = "Prices", f"<r{n}@{LEAD_DOMAIN}>"
    if n > 1:  # her later mails answer her first, so they stay in its conversation
        email["In-Reply-To"] = email["References"] = f"<r1@{LEAD_DOMAIN}>"
    email.set_content(emma)
    mail.send(email, user=MAIL_LEAD)  # postfix delivers it; the web process reads it over IMAP
    body, headers = signed_message(
        parse_contact("Sandy <sandy@example.com>"), sandy, signing_secret=SIGNING_SECRET
    )
    assert (
        httpx.post(f"{web.url}{SANDBOX_PATH}", content=body, headers=headers, timeout=10).status_code == 200
    )


def lead_entries(slack: SlackStandIn, card: str) -> list[str]:
    """What the lead wrote, as the thread shows it (the teammates' own messages left out)."""
    return [e for e in entries(slack, card) if not e.startswith("reply to")]


def test_a_redis_outage_on_every_channel_stores_everything_then_mirrors_and_delivers_it_once(
    postgres_databases: PostgresDatabases,
    private_redis: tuple[int, list[subprocess.Popen[bytes]]],
    tmp_path: Path,
):
    need_mail_servers()
    port, servers = private_redis
    start_redis(port, servers)
    with (
        running_mail_servers() as mail,
        holding_slack() as slack,
        holding_graph() as graph,
        running_unipile() as unipile,
    ):
        runtime = {"DATABASE_URL": postgres_databases.create(), "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        env = app_environment(runtime, slack, graph, tmp_path) | linkedin_env(unipile)
        env |= {
            "EMAIL_IMAP_URL": mail.imap_url(),
            "EMAIL_SMTP_URL": mail.smtp_url(),
            "EMAIL_FROM": f"Acme Sales <sales@{DOMAIN}>",
            # At the default level: Celery logs its lost broker connection as a WARNING line, and at
            # DEBUG (which an operator asks for) with kombu's traceback under it.
            "THREADLINE_LOG_LEVEL": "INFO",
        }
        with deployed(env, tmp_path) as run:
            every_lead_writes(run.web, mail, 1)
            cards = {name: card_for(slack, name, timeout=60) for name in LEADS}
            slack.wait_for(
                lambda: all(lead_entries(slack, cards[n]) == LEADS[n][:1] for n in LEADS), timeout=60
            )

            stop(servers.pop())  # Redis goes away; leads keep writing, teammates keep replying
            every_lead_writes(run.web, mail, 2)
            every_lead_writes(run.web, mail, 3)
            for name, card in cards.items():
                rep_replies(run.web, slack, card, f"reply to {name}")
            # Everything is kept (the mail read over IMAP too) though no worker hears of it.
            wait_until(lambda: run.web.count(Inbox) == 4 * 3 + 4, timeout=60, what="16 deliveries stored")
            assert all(lead_entries(slack, cards[n]) == LEADS[n][:1] for n in LEADS)

            start_redis(port, servers)  # the sweep finds what the lost nudges named
            slack.wait_for(lambda: sum(len(lead_entries(slack, c)) for c in cards.values()) >= 12, timeout=90)
            assert {n: lead_entries(slack, cards[n]) for n in LEADS} == LEADS  # each once, in order
            assert len(slack.messages(CHANNEL)) == 4  # one card each

            graph.wait_for(lambda: len(graph.sent) >= 1, timeout=60)
            unipile.wait_for(lambda: len(unipile.sent) >= 1, timeout=60)
            replied = mail.wait_for_mail(MAIL_LEAD, 1, timeout=60)
            wait_until(lambda: "[sandbox] to" in run.log.read_text(), timeout=60, what="the sandbox reply")
            assert sent_to(graph, JANE) == ["reply to Wanda"]
            assert [s.text for s in unipile.sent] == ["reply to Linus"]
            assert len(replied) == 1 and b"reply to Emma" in replied[0]
            assert run.log.read_text().count("[sandbox] to") == 1
            assert "[sandbox] to sandy@example.com: reply to Sandy" in run.log.read_text()
        assert len(graph.sent) == 1 and len(unipile.sent) == 1
