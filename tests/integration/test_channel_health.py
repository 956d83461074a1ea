"""A lead channel that breaks (token revoked, account disconnected) is marked so, said once in Slack,
and its replies wait instead of failing one after another; a send that goes through, or the provider's
word, marks it working again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.notify import ChannelHealthNotice
from bot.slack_client import SlackGateway
from core.actions.health import do_record_account_health
from core.coordination import LocalCoordinator
from core.db import Database
from core.delivery import Deliverer
from core.errors import ChannelBroken
from core.models import ChannelAccount, DeliveryStatus, Health, Outbox, OutboxStatus
from core.outbox import JobKind, OutboxRunner
from core.ports import AccountHealth
from core.routing import Routes
from tests.conftest import SPECS, handlers
from tests.integration.test_delivery import ScriptedSender, deliver_job, make_due, message, reply
from tests.integration.test_mirror import TOKEN
from tests.standins.slack_api import SlackStandIn

DEFAULT, LINKEDIN_LEADS = "C0LEADS", "C0LINKEDIN"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(SPECS / "slack" / "methods", bot_token=TOKEN) as standin:
        standin.add_channel(DEFAULT, "leads")
        standin.add_channel(LINKEDIN_LEADS, "linkedin-leads")
        yield standin
        assert standin.violations == []


def notice(slack: SlackStandIn) -> ChannelHealthNotice:
    gateway = SlackGateway(token=TOKEN, base_url=slack.base_url, coordinator=LocalCoordinator(), burst=100)
    return ChannelHealthNotice(gateway, Routes(default=DEFAULT, channels={"linkedin": LINKEDIN_LEADS}))


def account(db: Database, channel: str) -> ChannelAccount | None:
    with db.sessions() as session:
        return session.scalar(select(ChannelAccount).where(ChannelAccount.channel == channel))


def run_notices(db: Database, runner: OutboxRunner) -> int:
    with db.sessions() as session:
        pending = list(
            session.scalars(
                select(Outbox.id).where(
                    Outbox.kind == JobKind.CHANNEL_HEALTH, Outbox.status == OutboxStatus.PENDING
                )
            )
        )
    for outbox_id in pending:
        runner.run(outbox_id)
    return len(pending)


def test_the_providers_word_marks_an_account_broken_and_healthy_each_said_once(
    db: Database, slack: SlackStandIn
):
    runner = OutboxRunner(db, handlers({JobKind.CHANNEL_HEALTH: notice(slack)}))
    down = AccountHealth("linkedin", "ACC1", ok=False, reason="CREDENTIALS <!channel>")
    assert db.run(lambda s: do_record_account_health(s, down))
    assert not db.run(lambda s: do_record_account_health(s, down))  # known already: said once
    broken = account(db, "linkedin")
    assert broken is not None and broken.health == Health.BROKEN and broken.broken_since is not None
    assert run_notices(db, runner) == 1
    [said] = slack.messages(LINKEDIN_LEADS)
    assert "LinkedIn" in said["text"] and "CREDENTIALS" in said["text"]
    assert "<!channel>" not in said["text"]  # the provider's words never ping anyone

    up = AccountHealth("linkedin", "ACC1", ok=True)
    assert db.run(lambda s: do_record_account_health(s, up))
    assert not db.run(lambda s: do_record_account_health(s, up))
    assert run_notices(db, runner) == 1
    assert "works again" in slack.messages(LINKEDIN_LEADS)[-1]["text"]
    healed = account(db, "linkedin")
    assert healed is not None and healed.health == Health.OK and healed.reason is None
    assert slack.messages(DEFAULT) == []  # said where the channel's conversations live


def test_replies_wait_while_the_channel_is_broken_and_go_once_it_works(db: Database, slack: SlackStandIn):
    revoked = ChannelBroken("The WhatsApp access token expired: set a new WHATSAPP_ACCESS_TOKEN")
    sender = ScriptedSender(revoked, revoked, "wamid.finally")
    runner = OutboxRunner(
        db,
        handlers(
            {
                JobKind.DELIVER: Deliverer(db, {"whatsapp": sender}),
                JobKind.CHANNEL_HEALTH: notice(slack),
                JobKind.MIRROR: lambda job: None,  # the thread is not what this tests
            }
        ),
    )
    message_id = reply(db)
    job = deliver_job(db)

    for _ in range(2):  # the token is still revoked on the second try
        runner.run(job)
        waiting = message(db, message_id)
        assert waiting.delivery_status == DeliveryStatus.QUEUED and waiting.delivery_error is None
        with db.sessions() as session:
            held = session.get_one(Outbox, job)
            assert held.status == OutboxStatus.PENDING and held.attempts <= 1  # waiting is not failing
        make_due(db)
    broken = account(db, "whatsapp")
    assert (
        broken is not None
        and broken.health == Health.BROKEN
        and "WHATSAPP_ACCESS_TOKEN" in (broken.reason or "")
    )
    assert run_notices(db, runner) == 1  # said once, not once per try
    [said] = slack.messages(DEFAULT)
    assert "WhatsApp" in said["text"] and "not connected" in said["text"]

    runner.run(job)  # fixed: the same reply goes out, once
    assert message(db, message_id).provider_message_id == "wamid.finally" and len(sender.sent) == 1
    healed = account(db, "whatsapp")
    assert healed is not None and healed.health == Health.OK
    assert run_notices(db, runner) == 1 and "works again" in slack.messages(DEFAULT)[-1]["text"]
