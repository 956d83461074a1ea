"""Provider faults, end to end: Slack in trouble for a while, each lead channel's provider answering 5xx
or losing its answer after taking a send, the model server failing or hanging, and the IMAP server
restarted under the app's IDLE. Every test counts what went in and what came out: nothing lost,
nothing doubled, and a send whose outcome is unknown is never repeated blind (docs/architecture.md,
"Exactly once, where it matters").

The Slack test has an app of its own; the others share one app (Celery + PostgreSQL) with every
channel and the AI agent, each test with leads of its own, so the suite stays inside its time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select

from bot.blocks import ids
from core.models import DeliveryStatus, Message, Outbox, OutboxStatus
from core.outbox import JobKind
from tests.conftest import PostgresDatabases
from tests.e2e.conftest import app_environment, running_app, running_graph, running_slack
from tests.e2e.harness import CHANNEL, PHONE_NUMBER_ID, AppProcess, interaction, message_event
from tests.mailserver import (
    DOMAIN,
    LEAD_DOMAIN,
    MAIL_UID,
    USERS,
    CutProxy,
    MailServers,
    need_mail_servers,
    running_mail_servers,
)
from tests.standins import meta_webhooks as meta
from tests.standins import unipile as li
from tests.standins.graph_api import GraphStandIn
from tests.standins.openai_api import OpenAIStandIn, Scripted
from tests.standins.slack_api import SlackStandIn
from tests.standins.unipile import UnipileStandIn

RUNTIMES = ("embedded-sqlite",)  # the Slack test; the shared app below runs on Celery + PostgreSQL
REDIS_DB = 11  # the shared app's Celery queue, apart from the other e2e modules' (conftest's 7)

OURS = f"sales@{DOMAIN}"
JANE = f"jane@{LEAD_DOMAIN}"
TOM = f"tom@{LEAD_DOMAIN}"
UNIPILE_KEY = "unipile-api-key-for-fault-tests"
UNIPILE_SECRET = "unipile-webhook-secret-for-fault-tests"
ACCOUNT = "acc-Threadline-faults"
OWN = "ACoAAOURSELVES"
AI_KEY = "sk-fault-tests-key"
SENT, FAILED = "white_check_mark", "warning"  # the delivery reactions on a rep's message


# --- helpers shared by the tests ----------------------------------------------------------------------


def card(slack: SlackStandIn, name: str, timeout: float = 30) -> str:
    """The ts of the card whose text names `name` (one card each)."""
    slack.wait_for(lambda: any(name in m["text"] for m in slack.messages(CHANNEL)), timeout=timeout)
    [ts] = [m["ts"] for m in slack.messages(CHANNEL) if name in m["text"]]
    return str(ts)


def lead_entries(slack: SlackStandIn, card_ts: str) -> list[str]:
    """What the app posted in a thread for the lead, in thread order ("Sender: text" → text)."""
    return [
        m["text"].split(": ", 1)[-1]
        for m in slack.replies(CHANNEL, card_ts)
        if m.get("bot_id") and "metadata" in m and "threadline_message" in json.dumps(m["metadata"])
    ]


def notices(slack: SlackStandIn, card_ts: str, words: str) -> list[dict[str, Any]]:
    return [m for m in slack.replies(CHANNEL, card_ts) if m.get("bot_id") and words in m["text"]]


def rep_replies(app: AppProcess, slack: SlackStandIn, card_ts: str, text: str) -> str:
    """A teammate writes in the thread: Slack keeps it, then sends us the event. Returns its ts."""
    ts = slack.post_as_user(CHANNEL, "U0ANA", text, thread_ts=card_ts)
    event = message_event(user="U0ANA", text=text, ts=ts, thread_ts=card_ts)
    assert app.slack_event(event).status_code == 200
    return ts


def press_retry(app: AppProcess, slack: SlackStandIn, card_ts: str, notice: dict[str, Any]) -> None:
    """Ana presses Retry on a "not delivered" notice in the thread."""
    [retry] = [
        element
        for block in notice["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == ids.RETRY_DELIVERY
    ]
    payload = {
        **interaction("block_actions", "U0ANA"),
        "container": {
            "type": "message",
            "message_ts": notice["ts"],
            "thread_ts": card_ts,
            "channel_id": CHANNEL,
            "is_ephemeral": False,
        },
        "trigger_id": slack.issue_trigger_id(),
        "channel": {"id": CHANNEL, "name": "leads"},
        "message": {**notice, "thread_ts": card_ts},
        "response_url": slack.response_url("actions"),
        "actions": [{**retry, "block_id": ids.DELIVERY_FAILURE_BLOCK, "action_ts": str(time.time())}],
    }
    assert app.slack_interaction(payload).status_code == 200


def poll(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling the database for a condition


def reply_state(app: AppProcess, slack_ts: str) -> tuple[DeliveryStatus | None, str | None, int]:
    """The rep's message's delivery status and error, and how many deliver jobs of it are unfinished."""
    with app.database() as db, db.sessions() as session:
        message = session.scalars(select(Message).where(Message.slack_ts == slack_ts)).one()
        unfinished = session.scalars(
            select(Outbox.id).where(
                Outbox.kind == JobKind.DELIVER,
                Outbox.message_id == message.id,
                Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.RUNNING]),
            )
        ).all()
        return message.delivery_status, message.delivery_error, len(unfinished)


def deliver_attempts(app: AppProcess, slack_ts: str) -> int:
    with app.database() as db, db.sessions() as session:
        message_id = session.scalars(select(Message.id).where(Message.slack_ts == slack_ts)).one_or_none()
        if message_id is None:
            return 0
        attempts = session.scalars(
            select(Outbox.attempts).where(Outbox.kind == JobKind.DELIVER, Outbox.message_id == message_id)
        ).all()
        return sum(attempts)


def settled_unknown(app: AppProcess, slack: SlackStandIn, card_ts: str, ts: str) -> dict[str, Any]:
    """Wait until the reply whose answer was lost is failed as "may or may not have reached the lead",
    with nothing left to send it again; returns the notice with its Retry button."""
    slack.wait_for(
        lambda: FAILED in slack.reactions(CHANNEL, ts) and len(notices(slack, card_ts, "Not delivered")) == 1,
        timeout=40,
    )
    status, error, unfinished = reply_state(app, ts)
    assert status == DeliveryStatus.FAILED and "may or may not" in (error or ""), error
    assert unfinished == 0  # nothing left that could send it again on its own
    [notice] = notices(slack, card_ts, "Not delivered")
    assert "may or may not" in notice["text"]
    return notice


def sent_again_once(app: AppProcess, slack: SlackStandIn, ts: str) -> None:
    slack.wait_for(lambda: SENT in slack.reactions(CHANNEL, ts), timeout=40)
    assert reply_state(app, ts)[::2] == (DeliveryStatus.SENT, 0)


# --- 1. Slack answering 429 and 5xx for a while ------------------------------------------------------


def whatsapp_lead(app: AppProcess, wa_id: str, name: str, text: str, message_id: str) -> None:
    payload = meta.text_message(
        wa_id=wa_id, name=name, text=text, message_id=message_id, phone_number_id=PHONE_NUMBER_ID
    )
    assert app.whatsapp(payload).status_code == 200


def test_slack_answering_429_and_5xx_for_a_while_loses_doubles_and_reorders_nothing(
    slack: SlackStandIn, graph: GraphStandIn, app_env: dict[str, str], tmp_path: Path
):
    # Slack work never gives up (its retry schedule has no last attempt), so an outage of minutes under
    # the production cap (180 s) is the same rounds as these 20 s under a 2 s cap: many failed tries,
    # each put off again, then everything once Slack answers.
    env = {**app_env, "THREADLINE_RETRY_CAP_SECONDS": "2"}
    leads = {"15550007001": "Jane Faults", "15550007002": "Carla Faults"}
    with running_app(env, tmp_path / "slack-trouble.log") as app:
        for n, (wa_id, name) in enumerate(leads.items()):
            whatsapp_lead(app, wa_id, name, "before", f"wamid.st{n}.0")
        cards = {wa_id: card(slack, name) for wa_id, name in leads.items()}
        slack.wait_for(lambda: all(lead_entries(slack, ts) == ["before"] for ts in cards.values()))

        slack.trouble_for(20, ("429", "500", "502", "503"), retry_after=2)
        replies: dict[str, list[str]] = {wa_id: [] for wa_id in leads}
        for round_ in (1, 2, 3):
            for n, wa_id in enumerate(leads):
                whatsapp_lead(app, wa_id, leads[wa_id], f"during {round_}", f"wamid.st{n}.{round_}")
                if round_ < 3:
                    text = f"rep answer {round_} to {leads[wa_id]}"
                    rep_replies(app, slack, cards[wa_id], text)
                    replies[wa_id].append(text)
        slack.wait_for(lambda: not slack.in_trouble, timeout=30)  # the incident lasts its 20 s
        refused = [c for c in slack.calls if c.status in {429, 500, 502, 503}]
        assert {c.status for c in refused} == {429, 500, 502, 503}
        assert len(refused) >= 10, "several rounds of tries, each refused"

        expected = ["before", "during 1", "during 2", "during 3"]
        for card_ts in cards.values():
            slack.wait_for(lambda ts=card_ts: len(lead_entries(slack, ts)) >= len(expected), timeout=40)
            assert lead_entries(slack, card_ts) == expected  # each once, in the order written
        graph.wait_for(lambda: len(graph.sent) >= 4, timeout=40)
        for wa_id in leads:
            got = [s.body["text"]["body"] for s in graph.sent if s.to == wa_id]
            assert got == replies[wa_id]  # each reply reached its lead once, in order
        for card_ts in cards.values():
            reps = [m for m in slack.replies(CHANNEL, card_ts) if m["user"] == "U0ANA"]
            slack.wait_for(lambda r=reps: all(SENT in slack.reactions(CHANNEL, m["ts"]) for m in r))
        assert len(slack.messages(CHANNEL)) == 2  # one card each, none posted twice
        assert len(graph.sent) == 4


# --- the shared app: every channel, the AI, real mail servers -------------------------------------------


@dataclass
class World:
    app: AppProcess
    slack: SlackStandIn
    graph: GraphStandIn
    unipile: UnipileStandIn
    model: OpenAIStandIn
    mail: MailServers
    smtp: CutProxy  # between the app and postfix: can lose postfix's answer to a mail


@pytest.fixture(scope="module")
def world(
    postgres_databases: PostgresDatabases, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    need_mail_servers()
    tmp = tmp_path_factory.mktemp("provider-faults")
    celery_redis = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(celery_redis).flushdb()
    runtime = {"DATABASE_URL": postgres_databases.create(), "REDIS_URL": celery_redis}
    with (
        running_mail_servers() as mail,
        running_slack() as slack,
        running_graph() as graph,
        UnipileStandIn(api_key=UNIPILE_KEY, account_id=ACCOUNT, own_provider_id=OWN) as unipile,
        OpenAIStandIn(api_key=AI_KEY, model="gpt-faults") as model,
    ):
        smtp = CutProxy(mail.smtp_port)
        # The model server fails every turn unless a test says otherwise: each new conversation is
        # handed to the team, so only the reps' replies reach leads.
        model.default = Scripted("status", status=500)
        env = app_environment(runtime, slack, graph, tmp) | {
            "THREADLINE_RETRY_CAP_SECONDS": "1",  # 3 minutes in production; the rule is the same
            # Every test's cards and entries share one channel; Slack's pace is not what is tested here.
            "THREADLINE_SLACK_POSTS_PER_SECOND": "20",
            "THREADLINE_SLACK_POST_BURST": "20",
            "EMAIL_IMAP_URL": mail.imap_url(),
            "EMAIL_SMTP_URL": mail.smtp_url().replace(f":{mail.smtp_port}", f":{smtp.port}"),
            "EMAIL_FROM": f"Acme Sales <{OURS}>",
            "UNIPILE_API_URL": unipile.base_url,
            "UNIPILE_API_KEY": UNIPILE_KEY,
            "UNIPILE_ACCOUNT_ID": ACCOUNT,
            "UNIPILE_WEBHOOK_SECRET": UNIPILE_SECRET,
            "OPENAI_API_KEY": AI_KEY,
            "OPENAI_BASE_URL": model.base_url,
            "THREADLINE_AI_MODEL": "gpt-faults",
            "THREADLINE_AI_TIMEOUT_SECONDS": "1",
        }
        try:
            with running_app(env, tmp / "threadline.log") as app:
                unipile.echo_sends_to(f"{app.url}/webhooks/linkedin", UNIPILE_SECRET)  # as Unipile does
                yield World(app, slack, graph, unipile, model, mail, smtp)
        finally:
            smtp.close()
        logs = app.logs()
        leaked = [s for s in (UNIPILE_KEY, UNIPILE_SECRET, AI_KEY, *USERS.values()) if s in logs]
        assert leaked == [], "a secret in the logs"
        assert unipile.violations == [], unipile.violations
        assert model.refused == [], "the app asked the model server what it refuses"


# --- 2. each lead channel's provider: 5xx, then an answer lost after the send was taken ------------------


def test_whatsapp_5xx_is_retried_to_one_send_and_a_lost_answer_is_not_resent_until_retry(world: World):
    app, slack, graph = world.app, world.slack, world.graph
    whatsapp_lead(app, "15550008001", "Wendy Graph", "Do you ship to Porto?", "wamid.gf.1")
    card_ts = card(slack, "Wendy Graph")

    for _ in range(2):  # "Service temporarily unavailable", as Graph answers in an incident
        graph.fail_next(2, http_status=503, message="Service temporarily unavailable")
    first = rep_replies(app, slack, card_ts, "Yes, to Porto too.")
    slack.wait_for(lambda: SENT in slack.reactions(CHANNEL, first), timeout=40)
    to_wendy = [s.body["text"]["body"] for s in graph.sent if s.to == "15550008001"]
    assert to_wendy == ["Yes, to Porto too."]
    assert sum(c.status == 503 for c in graph.calls) == 2

    graph.lose_answer_next()  # Graph takes it; its answer never arrives
    second = rep_replies(app, slack, card_ts, "Delivery takes two days.")
    notice = settled_unknown(app, slack, card_ts, second)
    to_wendy = [s.body["text"]["body"] for s in graph.sent if s.to == "15550008001"]
    assert to_wendy == ["Yes, to Porto too.", "Delivery takes two days."]  # not sent again blind

    press_retry(app, slack, card_ts, notice)  # Ana decides to send it again
    sent_again_once(app, slack, second)
    to_wendy = [s.body["text"]["body"] for s in graph.sent if s.to == "15550008001"]
    assert to_wendy == ["Yes, to Porto too.", "Delivery takes two days.", "Delivery takes two days."]


def test_linkedin_5xx_is_retried_to_one_send_and_a_lost_answer_is_settled_by_unipiles_echo(world: World):
    app, slack, unipile = world.app, world.slack, world.unipile
    chat = "chat-faults-1"
    unipile.add_chat(chat)
    payload = li.message_webhook(
        account_id=ACCOUNT,
        chat_id=chat,
        message_id="li-faults-1",
        text="Is there a team plan?",
        sender=li.attendee("ACoAALINDA", "Linda Unipile"),
        attendees=[li.attendee(OWN, "Ana Lima")],
    )
    raw = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Unipile-Secret": UNIPILE_SECRET}
    assert httpx.post(f"{app.url}/webhooks/linkedin", content=raw, headers=headers).status_code == 200
    card_ts = card(slack, "Linda Unipile")

    for _ in range(2):
        unipile.fail_next(503, "errors/service_unavailable", "Service unavailable")
    first = rep_replies(app, slack, card_ts, "Yes, from five seats.")
    slack.wait_for(lambda: SENT in slack.reactions(CHANNEL, first), timeout=40)
    assert [s.text for s in unipile.sent] == ["Yes, from five seats."]
    # Its echo through the webhook is known by the id Unipile answered: not stored a second time.
    poll(lambda: unipile.echo is not None and len(unipile.echo.answers) == 1, "the echo")
    failed_sends = [c for c in unipile.calls if c.method == "POST" and c.status == 503]
    assert len(failed_sends) == 2

    # Unipile takes the next one and echoes it, as it echoes every send, but its answer is lost: the
    # reply is failed as "may or may not" (not sent again), then its echo proves it arrived.
    unipile.lose_answer_next()
    second = rep_replies(app, slack, card_ts, "I can send you a quote.")
    slack.wait_for(lambda: SENT in slack.reactions(CHANNEL, second), timeout=40)
    assert reply_state(app, second)[::2] == (DeliveryStatus.SENT, 0)
    assert [s.text for s in unipile.sent] == ["Yes, from five seats.", "I can send you a quote."]
    with app.database() as db, db.sessions() as session:
        reply = session.scalars(select(Message).where(Message.slack_ts == second)).one()
        assert reply.provider_message_id == unipile.sent[-1].message_id
        assert session.scalars(select(Message.id).where(Message.text == "I can send you a quote.")).all() == [
            reply.id
        ]  # the echo is that reply, not a second message "sent from LinkedIn"
    assert notices(slack, card_ts, "sent from LinkedIn") == []


def lead_mails(
    servers: MailServers, text: str, *, name: str, sender: str, message_id: str, answers: str | None = None
) -> None:
    mail = EmailMessage()
    mail["From"] = f"{name} <{sender}>"
    mail["To"] = f"Acme <{OURS}>"
    mail["Subject"] = "Re: Faults" if answers else "Faults"
    mail["Message-ID"] = message_id
    if answers:  # a mail answering the lead's first joins its conversation
        mail["References"] = answers
    mail.set_content(text)
    servers.send(mail, user=sender)


def bodies(servers: MailServers, user: str) -> list[tuple[str, str]]:
    """Each mail in the user's mailbox: (Message-ID, first line of its text)."""
    found = []
    for raw in servers.messages(user):
        mail = message_from_bytes(raw, policy=policy.default)
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found.append((str(mail["Message-ID"]), text.strip().splitlines()[0]))
    return found


def test_smtp_down_then_back_sends_once_and_a_lost_answer_after_the_mail_is_not_resent(world: World):
    app, slack, mail = world.app, world.slack, world.mail
    lead_mails(mail, "Can you call me?", name="Jane Mail", sender=JANE, message_id=f"<call@{LEAD_DOMAIN}>")
    card_ts = card(slack, "Jane Mail", timeout=40)

    mail.stop_postfix()
    try:
        first = rep_replies(app, slack, card_ts, "Sure, this afternoon.")
        poll(lambda: deliver_attempts(app, first) >= 2, "two refused sends")
    finally:
        mail.start_postfix()
    slack.wait_for(lambda: SENT in slack.reactions(CHANNEL, first), timeout=40)
    mail.wait_for_mail(JANE, 1)
    assert [text for _, text in bodies(mail, JANE)] == ["Sure, this afternoon."]

    # postfix queues the mail and says so; the connection breaks before the app reads that answer.
    world.smtp.cut_when(b"250 2.0.0 Ok: queued")
    second = rep_replies(app, slack, card_ts, "At three?")
    notice = settled_unknown(app, slack, card_ts, second)
    mail.wait_for_mail(JANE, 2)
    assert [text for _, text in bodies(mail, JANE)] == ["Sure, this afternoon.", "At three?"]
    assert world.smtp.cuts == 1

    press_retry(app, slack, card_ts, notice)
    sent_again_once(app, slack, second)
    mail.wait_for_mail(JANE, 3)
    [_, (id_two, two), (id_again, again)] = bodies(mail, JANE)
    assert (two, again) == ("At three?", "At three?") and id_two == id_again  # one Message-ID: one copy


# --- the model server: 500, or no answer in time → the team takes over, the lead gets nothing --------


def test_the_model_server_failing_or_hanging_hands_the_conversation_over_and_sends_nothing(world: World):
    app, slack, graph, model = world.app, world.slack, world.graph, world.model
    whatsapp_lead(
        app, "15550009001", "Mona Model", "Hello, do you have a catalogue?", "wamid.mm.1"
    )  # answered 500
    mona = card(slack, "Mona Model")
    slack.wait_for(lambda: len(notices(slack, mona, "over to the team")) == 1, timeout=30)
    assert "500" in notices(slack, mona, "over to the team")[0]["text"]

    model.default = Scripted("hang", seconds=3)  # past THREADLINE_AI_TIMEOUT_SECONDS (1)
    try:
        whatsapp_lead(app, "15550009002", "Hank Hang", "Hello, do you have a catalogue?", "wamid.mm.2")
        hank = card(slack, "Hank Hang")
        slack.wait_for(lambda: len(notices(slack, hank, "over to the team")) == 1, timeout=30)
        assert "did not answer within" in notices(slack, hank, "over to the team")[0]["text"]
    finally:
        model.default = Scripted("status", status=500)
    with app.database() as db, db.sessions() as session:
        unfinished = session.scalars(
            select(Outbox.kind).where(Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.RUNNING]))
        ).all()
    assert JobKind.AI_REPLY not in unfinished and JobKind.DELIVER not in unfinished
    assert [s for s in graph.sent if s.to in {"15550009001", "15550009002"}] == []  # nothing half-made
    for ts in (mona, hank):
        slack.wait_for(lambda ts=ts: "AI: paused" in json.dumps(slack.message(CHANNEL, ts)))


# --- 3. the IMAP server restarted under the app's IDLE ------------------------------------------------


def deliver_to_maildir(servers: MailServers, mail: EmailMessage, user: str) -> None:
    """What postfix's delivery agent does, done while dovecot is down: the mail lands in the Maildir."""
    local, domain = user.split("@")
    maildir = servers.root / "mail" / domain / local / "Maildir"
    now = time.time()
    name = f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}.threadline-faults"  # Maildir's naming
    (maildir / "tmp" / name).write_bytes(mail.as_bytes())
    os.chown(maildir / "tmp" / name, MAIL_UID, MAIL_UID)
    (maildir / "tmp" / name).rename(maildir / "new" / name)


def test_mail_that_lands_while_dovecot_restarts_is_read_once(world: World):
    app, slack, mail = world.app, world.slack, world.mail
    lead_mails(mail, "Before the restart", name="Tom Imap", sender=TOM, message_id=f"<before@{LEAD_DOMAIN}>")
    tom = card(slack, "Tom Imap", timeout=40)
    slack.wait_for(lambda: len(lead_entries(slack, tom)) == 1)

    mail.stop_dovecot()
    try:
        during = EmailMessage()
        during["From"] = f"Tom Imap <{TOM}>"
        during["To"] = OURS
        during["Subject"] = "Re: Faults"
        during["Message-ID"] = f"<during@{LEAD_DOMAIN}>"
        during["References"] = f"<before@{LEAD_DOMAIN}>"
        during.set_content("While the server was down")
        deliver_to_maildir(mail, during, OURS)
    finally:
        mail.start_dovecot()
    after, root = f"<after@{LEAD_DOMAIN}>", f"<before@{LEAD_DOMAIN}>"
    lead_mails(mail, "After the restart", name="Tom Imap", sender=TOM, message_id=after, answers=root)

    expected = ["Before the restart", "While the server was down", "After the restart"]
    slack.wait_for(lambda: len(lead_entries(slack, tom)) >= 3, timeout=40)
    shown = [next(w for w in expected if w in entry) for entry in lead_entries(slack, tom)]
    assert shown[0] == expected[0] and sorted(shown) == sorted(expected)  # each once
    with app.database() as db, db.sessions() as session:
        ids_ = session.scalars(select(Message.provider_message_id).where(Message.channel == "email")).all()
    for mid in ("before", "during", "after"):
        assert ids_.count(f"<{mid}@{LEAD_DOMAIN}>") == 1
    with mail.mailbox(OURS) as box:
        assert box.search("UNSEEN") == []
