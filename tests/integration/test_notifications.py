"""Notifications and App Home's data against real databases (SQLite and PostgreSQL) and the strict
Slack stand-in: the assignee's DM when their lead writes, the SLA reminder once per wait, settings."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.mirror import Mirror
from bot.notify import MessageNotifier, SlaReminder
from bot.slack_client import SlackGateway
from core.actions.common import SYSTEM, Actor
from core.actions.conversation import do_assign, do_close
from core.actions.inbound import do_receive_many
from core.actions.members import Notifications, do_register_member, do_set_notifications
from core.actions.queue import do_take_from_queue
from core.actions.replies import do_reply
from core.actions.sla import do_queue_sla_reminders
from core.coordination import LocalCoordinator
from core.db import Database
from core.models import AIMode, Conversation, Event, Member, Outbox, OutboxStatus, utcnow
from core.outbox import JobKind, OutboxRunner
from core.ports import Inbound
from core.queries.home import home_summary
from core.routing import Routes
from tests.conftest import SPECS, handlers
from tests.integration.test_use_cases import whatsapp_text
from tests.standins.slack_api import SlackStandIn

TOKEN = "xoxb-notify-test"
CHANNEL, OTHER = "C0LEADS", "C0OTHER"
ANA = "U0ANA"
HOURS = 24.0
_ids = itertools.count()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(SPECS / "slack" / "methods", bot_token=TOKEN) as standin:
        standin.add_channel(CHANNEL, "leads")
        standin.add_user(ANA, "ana", "Ana Lima")
        yield standin
        assert standin.violations == []


@pytest.fixture
def runner(db: Database, slack: SlackStandIn) -> OutboxRunner:
    gateway = SlackGateway(token=TOKEN, base_url=slack.base_url, coordinator=LocalCoordinator(), burst=100)
    return OutboxRunner(
        db,
        handlers(
            {
                JobKind.MIRROR: Mirror(db, gateway, routes=Routes(default=CHANNEL), ai_available=False),
                JobKind.NOTIFY_MESSAGE: MessageNotifier(db, gateway),
                JobKind.REMIND_SLA: SlaReminder(db, gateway),
                JobKind.NOTIFY_ASSIGNEE: lambda job: None,  # the assignment DM is not what these test
            }
        ),
    )


def run_pending(db: Database, runner: OutboxRunner, kind: JobKind) -> int:
    with db.sessions() as session:
        pending = list(
            session.scalars(
                select(Outbox.id).where(Outbox.kind == kind, Outbox.status == OutboxStatus.PENDING)
            )
        )
    for outbox_id in pending:
        assert runner.run(outbox_id)
    return len(pending)


def lead_writes(db: Database, *texts: str, wa_id: str = "15550000001", name: str = "Jane Doe") -> int:
    inbounds = [whatsapp_text(t, message_id=f"wamid.n{next(_ids)}", wa_id=wa_id, name=name) for t in texts]
    return db.run(lambda s: do_receive_many(s, inbounds, ai_available=False))[0].conversation_id


def ana(db: Database) -> Member:
    return db.run(lambda s: do_register_member(s, ANA, name="Ana Lima", email=None))


def assign_to_ana(db: Database, conversation_id: int) -> None:
    member_id = ana(db).id
    db.run(lambda s: do_assign(s, conversation_id, member_id, actor=SYSTEM))


def dms(slack: SlackStandIn) -> list[str]:
    return [m["text"] for m in slack.messages(ANA)]


def thread(slack: SlackStandIn) -> list[str]:
    [card] = slack.messages(CHANNEL)
    return [m["text"] for m in slack.replies(CHANNEL, card["ts"])]


def reminders(db: Database) -> int:
    with db.sessions() as session:
        return len(list(session.scalars(select(Outbox.id).where(Outbox.kind == JobKind.REMIND_SLA))))


def sweep(db: Database, *, after: float = HOURS + 1) -> int:
    return db.run(lambda s: do_queue_sla_reminders(s, now=utcnow() + timedelta(hours=after), hours=HOURS))


# --- the DM when my lead writes --------------------------------------------------------------------------


def test_a_lead_writing_to_my_conversation_sends_me_one_dm_per_batch(
    db: Database, slack: SlackStandIn, runner: OutboxRunner
):
    conversation_id = lead_writes(db, "hello")
    assert run_pending(db, runner, JobKind.NOTIFY_MESSAGE) == 0  # nobody's yet
    run_pending(db, runner, JobKind.MIRROR)
    assign_to_ana(db, conversation_id)

    def inbound(message_id: str, text: str, kind: str = "text") -> Inbound:
        written = whatsapp_text(text, message_id=message_id, wa_id="15550000001")
        return Inbound(**{**written.__dict__, "kind": kind})

    batch = [
        inbound("wamid.b1", "one"),
        inbound("wamid.b2", "<!channel> two"),
        inbound("wamid.r1", "", "reaction"),
    ]
    db.run(lambda s: do_receive_many(s, batch, ai_available=False))
    lone = [inbound("wamid.r2", "", "reaction")]
    db.run(lambda s: do_receive_many(s, lone, ai_available=False))  # a 👍 alone tells nobody

    assert run_pending(db, runner, JobKind.NOTIFY_MESSAGE) == 1
    [dm] = slack.messages(ANA)
    assert dm["text"] == "Jane Doe sent 2 messages on WhatsApp."
    shown = str(dm["blocks"])
    assert "&lt;!channel&gt; two" in shown and "<!channel>" not in shown
    assert "/archives/C0LEADS/p" in shown  # the link to the thread


def test_messages_arriving_while_my_dm_waits_join_it(db: Database, slack: SlackStandIn, runner: OutboxRunner):
    conversation_id = lead_writes(db, "hello")
    run_pending(db, runner, JobKind.MIRROR)
    assign_to_ana(db, conversation_id)
    lead_writes(db, "one", "two")  # the DM for these has not gone out yet…
    lead_writes(db, "three")  # …so it says three

    assert run_pending(db, runner, JobKind.NOTIFY_MESSAGE) == 1
    lead_writes(db, "four")  # after it went: a new DM
    assert run_pending(db, runner, JobKind.NOTIFY_MESSAGE) == 1
    first, second = slack.messages(ANA)
    assert first["text"] == "Jane Doe sent 3 messages on WhatsApp." and "three" in str(first["blocks"])
    assert second["text"] == "Jane Doe sent a message on WhatsApp." and "four" in str(second["blocks"])


def test_no_dm_once_i_turn_them_off_even_for_one_already_queued(
    db: Database, slack: SlackStandIn, runner: OutboxRunner
):
    conversation_id = lead_writes(db, "hello")
    run_pending(db, runner, JobKind.MIRROR)
    assign_to_ana(db, conversation_id)
    lead_writes(db, "queued before I turned them off")

    def set_to(on_message: bool) -> Notifications:
        wanted = Notifications(on_assign=True, on_message=on_message)
        return db.run(lambda s: do_set_notifications(s, ANA, wanted, name="Ana Lima", email=None))

    set_to(False)
    lead_writes(db, "after")
    assert run_pending(db, runner, JobKind.NOTIFY_MESSAGE) == 1  # the one queued before
    assert dms(slack) == []

    set_to(True)
    lead_writes(db, "on again")
    run_pending(db, runner, JobKind.NOTIFY_MESSAGE)
    assert dms(slack) == ["Jane Doe sent a message on WhatsApp."]
    assert "on again" in str(slack.messages(ANA)[0]["blocks"])


def test_notification_settings_register_a_newcomer_and_are_audited(db: Database):
    wanted = Notifications(on_assign=False, on_message=True)
    db.run(lambda s: do_set_notifications(s, "U0NEW", wanted, name="New Rep", email="n@example.com"))
    db.run(lambda s: do_set_notifications(s, "U0NEW", wanted, name="New Rep", email="n@example.com"))
    with db.sessions() as session:
        member = session.scalars(select(Member).where(Member.slack_user_id == "U0NEW")).one()
        assert (member.notify_on_assign, member.notify_on_message, member.name) == (False, True, "New Rep")
        [event] = session.scalars(select(Event).where(Event.kind == "notifications"))
        assert event.member_id == member.id and event.old == {"on_assign": True, "on_message": True}


# --- the SLA reminder ------------------------------------------------------------------------------------


def test_a_waiting_lead_is_reminded_once_per_wait(db: Database, slack: SlackStandIn, runner: OutboxRunner):
    conversation_id = lead_writes(db, "hello?", name="<!channel> Eve")
    assert sweep(db) == 0  # no thread yet: a reminder goes in the thread
    run_pending(db, runner, JobKind.MIRROR)
    assert sweep(db, after=HOURS - 1) == 0  # not overdue yet

    assert sweep(db) == 1
    assert sweep(db) == 0  # once per wait
    run_pending(db, runner, JobKind.REMIND_SLA)
    [reminder] = thread(slack)[1:]
    assert reminder.startswith(":alarm_clock: <!here> &lt;!channel&gt; Eve has been waiting")

    lead_writes(db, "still there?")  # the same wait goes on: no second reminder
    assert sweep(db) == 0

    member_id = ana(db).id
    card_ts = slack.messages(CHANNEL)[0]["ts"]
    db.run(
        lambda s: do_reply(
            s,
            conversation_id,
            "Yes!",
            actor=Actor.member(s.get_one(Member, member_id)),
            slack_channel=CHANNEL,
            slack_ts=slack.post_as_user(CHANNEL, ANA, "Yes!", thread_ts=card_ts),
        )
    )
    assign_to_ana(db, conversation_id)
    lead_writes(db, "one more question")  # a new wait
    assert sweep(db) == 1
    run_pending(db, runner, JobKind.MIRROR)
    run_pending(db, runner, JobKind.REMIND_SLA)
    assert sum(t.startswith(":alarm_clock:") for t in thread(slack)) == 2
    assert any(t.startswith(":alarm_clock: <@U0ANA> ") for t in thread(slack))


def test_a_reminder_whose_wait_ended_meanwhile_posts_nothing(
    db: Database, slack: SlackStandIn, runner: OutboxRunner
):
    conversation_id = lead_writes(db, "hello?")
    run_pending(db, runner, JobKind.MIRROR)
    assert sweep(db) == 1
    db.run(lambda s: do_close(s, conversation_id, actor=SYSTEM))
    run_pending(db, runner, JobKind.REMIND_SLA)
    assert not any(t.startswith(":alarm_clock:") for t in thread(slack))
    assert sweep(db) == 0  # closed: nobody owes it an answer


def test_a_reminder_posted_before_a_crash_is_not_posted_again(
    db: Database, slack: SlackStandIn, runner: OutboxRunner
):
    lead_writes(db, "hello?")
    run_pending(db, runner, JobKind.MIRROR)
    assert sweep(db) == 1
    run_pending(db, runner, JobKind.REMIND_SLA)
    # What a worker that died after Slack answered, before recording it, leaves: the item to run again.
    with db.transaction() as session:
        item = session.scalars(select(Outbox).where(Outbox.kind == JobKind.REMIND_SLA)).one()
        item.status, item.done_at = OutboxStatus.PENDING, None

    assert run_pending(db, runner, JobKind.REMIND_SLA) == 1
    assert sum(t.startswith(":alarm_clock:") for t in thread(slack)) == 1


def test_sweeps_running_at_once_queue_each_reminder_once(
    db: Database, slack: SlackStandIn, runner: OutboxRunner
):
    for n in range(12):
        lead_writes(db, "hello", wa_id=f"1555000{n:04d}")
    run_pending(db, runner, JobKind.MIRROR)
    start = threading.Barrier(4)
    counts: list[int] = []

    def one_sweep() -> None:
        start.wait()
        counts.append(sweep(db))

    sweepers = [threading.Thread(target=one_sweep) for _ in range(4)]
    for sweeper in sweepers:
        sweeper.start()
    for sweeper in sweepers:
        sweeper.join()
    assert sum(counts) == 12 and reminders(db) == 12


# --- App Home's data -------------------------------------------------------------------------------------


def test_home_lists_mine_unread_first_and_the_queue_longest_wait_first(db: Database, runner: OutboxRunner):
    quiet, busy, newest = (lead_writes(db, "hi", wa_id=f"1555100{n:04d}", name=f"L{n}") for n in range(3))
    waiting_longest, waiting = (
        lead_writes(db, "hi", wa_id=f"1555200{n:04d}", name=f"Q{n}") for n in range(2)
    )
    elsewhere = lead_writes(db, "hi", wa_id="15553000000", name="Elsewhere")
    run_pending(db, runner, JobKind.MIRROR)
    for conversation_id in (quiet, busy, newest):
        assign_to_ana(db, conversation_id)
    now = utcnow()
    with db.transaction() as session:
        for conversation_id, unread, minutes_ago in ((quiet, 0, 30), (busy, 2, 60), (newest, 0, 1)):
            row = session.get_one(Conversation, conversation_id)
            row.unread_count, row.last_activity_at = unread, now - timedelta(minutes=minutes_ago)
        session.get_one(Conversation, waiting_longest).waiting_since = now - timedelta(hours=5)
        session.get_one(Conversation, waiting).waiting_since = now - timedelta(hours=1)
        session.get_one(Conversation, elsewhere).slack_channel = OTHER

    with db.sessions() as session:
        summary = home_summary(session, ANA, channels=[CHANNEL], since=now - timedelta(days=7))
        stranger = home_summary(session, "U0NOBODY", channels=[CHANNEL], since=now - timedelta(days=7))
    assert [r.conversation_id for r in summary.mine] == [busy, newest, quiet]
    assert [r.conversation_id for r in summary.unassigned] == [waiting_longest, waiting]
    assert (summary.mine_open, summary.unassigned_open) == (3, 2)
    assert summary.week is not None and summary.week.conversations == 3
    assert summary.notifications == Notifications(on_assign=True, on_message=True)
    assert stranger.mine == [] and stranger.week is None and stranger.unassigned_open == 2


def test_take_it_takes_only_what_nobody_has(db: Database):
    first, second, third = (lead_writes(db, "hi", wa_id=f"1555400{n:04d}") for n in range(3))
    ana_id = ana(db).id
    bob = db.run(lambda s: do_register_member(s, "U0BOB", name="Bob", email=None))
    as_bob = Actor.member(bob)
    with db.transaction() as session:
        session.get_one(Conversation, second).ai_mode = AIMode.ACTIVE
    db.run(lambda s: do_assign(s, second, ana_id, actor=SYSTEM))
    db.run(lambda s: do_close(s, third, actor=SYSTEM))

    taken = db.run(lambda s: do_take_from_queue(s, first, actor=as_bob))
    late = db.run(lambda s: do_take_from_queue(s, second, actor=as_bob))
    closed = db.run(lambda s: do_take_from_queue(s, third, actor=as_bob))

    assert (
        taken.taken
        and (late.taken, late.taken_by) == (False, ANA)
        and (closed.taken, closed.closed) == (False, True)
    )
    with db.sessions() as session:
        assert session.get_one(Conversation, first).assignee_id == bob.id
        untouched = session.get_one(Conversation, second)
        assert (untouched.assignee_id, untouched.ai_mode) == (
            ana_id,
            AIMode.ACTIVE,
        )  # Bob's late click did nothing
        assert session.get_one(Conversation, third).assignee_id is None
