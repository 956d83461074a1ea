"""WhatsApp's reply window, templates and delivery statuses through core, on both databases.

The real WhatsApp sender talks to an injected HTTP transport (Graph's answers), core's deliverer and
use-cases run against the real database: what the rep would see is what the rows say.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from channels.whatsapp import WhatsAppSender, parse_webhook
from core.actions.conversation import do_close
from core.actions.inbound import do_receive, do_record_delivery
from core.actions.replies import TEMPLATE, do_send_template
from core.db import Database
from core.delivery import Deliverer
from core.errors import NEEDS_TEMPLATE, InvalidAction, NotFound
from core.models import Conversation, DeliveryStatus, Message, Outbox, Status, utcnow
from core.outbox import JobKind, OutboxRunner
from core.ports import DeliveryUpdate, Outbound, PartSent, SendReceipt, Template, ignore_part
from tests.conftest import SPECS, handlers
from tests.integration.test_delivery import deliver_job, make_due, message, reply
from tests.integration.test_use_cases import NOW, member, whatsapp_text
from tests.standins import meta_webhooks as meta
from tests.standins.graph_api import GraphStandIn

SPEC = SPECS / "whatsapp" / "business-messaging-api_v23.0.yaml"
GRAPH = GraphStandIn(SPEC, access_token="tok", phone_number_id="PN1")  # its spec check only
TEMPLATES = (Template("follow_up", "en_US"), Template("reminder", "pt_BR"))


class Graph:
    """Graph's messages endpoint: each body checked against the spec, answered with a new id."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert GRAPH.check_send(body) is None
        self.bodies.append(body)
        return httpx.Response(200, json={"messages": [{"id": f"wamid.OUT{len(self.bodies)}"}]})


def sender(graph: Graph) -> WhatsAppSender:
    return WhatsAppSender(
        api_url="https://graph.test/v23.0",
        phone_number_id="PN1",
        access_token="tok",
        client=httpx.Client(transport=httpx.MockTransport(graph)),
        templates=TEMPLATES,
    )


def deliver(db: Database, whatsapp: WhatsAppSender) -> None:
    OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"whatsapp": whatsapp})})).run(deliver_job(db))


def lead_wrote_ago(db: Database, message_id: int, ago: timedelta) -> None:
    with db.transaction() as session:
        conversation = session.get_one(Message, message_id).conversation
        conversation.last_inbound_at = utcnow() - ago


def test_inside_the_window_a_reply_goes_as_text(db: Database):
    graph = Graph()
    message_id = reply(db)
    lead_wrote_ago(db, message_id, timedelta(hours=23))
    deliver(db, sender(graph))
    assert message(db, message_id).delivery_status == DeliveryStatus.SENT
    assert [b["type"] for b in graph.bodies] == ["text"]


def test_outside_the_window_a_reply_fails_as_needing_a_template_without_asking_graph(db: Database):
    graph = Graph()
    message_id = reply(db)
    lead_wrote_ago(db, message_id, timedelta(hours=25))
    deliver(db, sender(graph))
    failed = message(db, message_id)
    assert (failed.delivery_status, failed.delivery_error_code) == (DeliveryStatus.FAILED, NEEDS_TEMPLATE)
    assert "Pick one below" in (failed.delivery_error or "") and graph.bodies == []


def test_a_chosen_template_goes_out_once_as_the_reps_message(db: Database):
    graph = Graph()
    failed_id = reply(db)
    lead_wrote_ago(db, failed_id, timedelta(days=3))
    deliver(db, sender(graph))
    conversation_id = message(db, failed_id).conversation_id
    ana = member(db)

    def choose(template: Template) -> int:
        posted = db.run(
            lambda s: do_send_template(
                s, conversation_id, template, actor=ana, offered=TEMPLATES, instead_of=failed_id
            )
        )
        return posted.message_id

    template_id = choose(Template("reminder", "pt_BR"))
    assert choose(Template("reminder", "pt_BR")) == template_id  # the second click: the same message
    deliver(db, sender(graph))

    sent = message(db, template_id)
    assert (sent.kind, sent.text, sent.member_id) == (TEMPLATE, "[template reminder (pt_BR)]", ana.member_id)
    assert sent.delivery_status == DeliveryStatus.SENT and sent.provider_message_id == "wamid.OUT1"
    assert graph.bodies == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "15551230001",
            "type": "template",
            "template": {"name": "reminder", "language": {"policy": "deterministic", "code": "pt_BR"}},
        }
    ]
    with db.sessions() as session:
        assert session.query(Message).filter(Message.kind == TEMPLATE).count() == 1
        assert session.get_one(Conversation, conversation_id).status == Status.PENDING  # we answered


def test_a_template_not_offered_or_another_conversations_message_is_refused(db: Database):
    failed_id = reply(db)
    conversation_id = message(db, failed_id).conversation_id
    ana = member(db)
    with pytest.raises(InvalidAction, match="not offered"):
        db.run(
            lambda s: do_send_template(
                s, conversation_id, Template("gone", "en"), actor=ana, offered=TEMPLATES, instead_of=failed_id
            )
        )
    with pytest.raises(NotFound):
        db.run(
            lambda s: do_send_template(
                s, conversation_id + 1, TEMPLATES[0], actor=ana, offered=TEMPLATES, instead_of=failed_id
            )
        )


def test_a_failed_status_for_the_window_offers_templates_too(db: Database):
    graph = Graph()
    message_id = reply(db)
    deliver(db, sender(graph))
    failed = meta.status_update(
        message_id="wamid.OUT1",
        recipient_id="15551230001",
        status="failed",
        phone_number_id="PN1",
        errors=[{"code": 131047, "title": "Re-engagement message"}],
    )
    assert meta.status_problems(SPEC, failed) == []
    for update in parse_webhook(failed).updates:
        assert db.run(lambda s, u=update: do_record_delivery(s, u))  # type: ignore[misc]
    stored = message(db, message_id)
    assert (stored.delivery_status, stored.delivery_error_code) == (DeliveryStatus.FAILED, NEEDS_TEMPLATE)


@pytest.mark.parametrize(
    ("said", "final"),
    [
        (["delivered", "read"], DeliveryStatus.READ),
        (["read", "delivered"], DeliveryStatus.READ),
        (["read", "failed"], DeliveryStatus.READ),  # a late failure does not undo that it was read
        (["delivered", "failed"], DeliveryStatus.DELIVERED),
        (["failed", "delivered"], DeliveryStatus.DELIVERED),  # it did arrive after all
        (["sent", "failed", "failed"], DeliveryStatus.FAILED),
        (["delivered", "delivered", "sent"], DeliveryStatus.DELIVERED),
    ],
)
def test_statuses_in_any_order_end_where_the_furthest_one_says(
    db: Database, said: list[str], final: DeliveryStatus
):
    message_id = reply(db)
    deliver(db, sender(Graph()))
    for status in said:
        update = DeliveryUpdate("whatsapp", "wamid.OUT1", DeliveryStatus(status), NOW, error="131026: gone")
        db.run(lambda s, u=update: do_record_delivery(s, u))  # type: ignore[misc]
    stored = message(db, message_id)
    assert stored.delivery_status == final
    assert (stored.delivery_error is not None) == (final == DeliveryStatus.FAILED)


class RacingSender:
    """Graph takes the message, and its status webhooks are stored before our worker records the send."""

    name = "whatsapp"

    def __init__(self, db: Database, statuses: list[DeliveryStatus]) -> None:
        self.db, self.statuses = db, statuses

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        for status in self.statuses:
            update = DeliveryUpdate("whatsapp", "wamid.RACE", status, NOW)
            assert not self.db.run(lambda s, u=update: do_record_delivery(s, u))  # type: ignore[misc]
        return SendReceipt("wamid.RACE")


@pytest.mark.parametrize(
    "statuses",
    [[DeliveryStatus.READ, DeliveryStatus.DELIVERED], [DeliveryStatus.DELIVERED, DeliveryStatus.READ]],
)
def test_statuses_that_beat_our_record_of_the_send_are_applied_when_it_is_recorded(
    db: Database, statuses: list[DeliveryStatus]
):
    message_id = reply(db)
    OutboxRunner(
        db, handlers({JobKind.DELIVER: Deliverer(db, {"whatsapp": RacingSender(db, statuses)})})
    ).run(deliver_job(db))
    assert message(db, message_id).delivery_status == DeliveryStatus.READ


def test_a_reaction_reopens_nothing_and_is_not_unread(db: Database):
    first = db.run(lambda s: do_receive(s, whatsapp_text("hi", message_id="wamid.R1"), ai_available=False))
    ana = member(db)
    db.run(lambda s: do_close(s, first.conversation_id, actor=ana))
    with db.transaction() as session:
        session.get_one(Conversation, first.conversation_id).unread_count = 0
    reaction = replace(
        whatsapp_text("👍", message_id="wamid.R2"), kind="reaction", reply_to_provider_id="wamid.R1"
    )
    db.run(lambda s: do_receive(s, reaction, ai_available=False))
    with db.sessions() as session:
        conversation = session.get_one(Conversation, first.conversation_id)
        assert (conversation.status, conversation.unread_count) == (Status.CLOSED, 0)


def test_a_throttled_send_waits_for_retry_after_and_is_sent_once(db: Database):
    calls: list[httpx.Request] = []

    def throttled_then_fine(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            error = {"message": "Rate limit hit", "type": "OAuthException", "code": 130429}
            return httpx.Response(429, json={"error": error}, headers={"Retry-After": "120"})
        return httpx.Response(200, json={"messages": [{"id": "wamid.LATE"}]})

    message_id = reply(db)
    whatsapp = WhatsAppSender(
        api_url="https://graph.test/v23.0",
        phone_number_id="PN1",
        access_token="tok",
        client=httpx.Client(transport=httpx.MockTransport(throttled_then_fine)),
    )
    job = deliver_job(db)
    runner = OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"whatsapp": whatsapp})}))
    runner.run(job)
    assert message(db, message_id).delivery_status == DeliveryStatus.QUEUED
    with db.sessions() as session:  # not before WhatsApp's Retry-After
        wait = session.get_one(Outbox, job).next_attempt_at - utcnow()
    assert timedelta(seconds=110) < wait <= timedelta(seconds=120)
    make_due(db)
    runner.run(job)
    assert message(db, message_id).provider_message_id == "wamid.LATE" and len(calls) == 2


def test_a_reaction_or_a_rating_opens_the_window_again(db: Database):
    first = db.run(lambda s: do_receive(s, whatsapp_text("hi", message_id="wamid.O1"), ai_available=False))
    with db.transaction() as session:
        session.get_one(Conversation, first.conversation_id).last_inbound_at = utcnow() - timedelta(days=2)
    reaction = replace(
        whatsapp_text("👍", message_id="wamid.O2"), kind="reaction", reply_to_provider_id="wamid.O1"
    )
    db.run(lambda s: do_receive(s, reaction, ai_available=False))
    with db.sessions() as session:
        last = session.get_one(Conversation, first.conversation_id).last_inbound_at
    assert last is not None and utcnow() - last < timedelta(minutes=1)


class WindowClosedRace:
    """Graph takes the text, then says (before our worker records the send) that the window had closed."""

    name = "whatsapp"

    def __init__(self, db: Database) -> None:
        self.db = db

    def send(self, message: Outbound, on_part: PartSent = ignore_part) -> SendReceipt:
        failed = meta.status_update(
            message_id="wamid.LATE131047",
            recipient_id="15551230001",
            status="failed",
            phone_number_id="PN1",
            errors=[{"code": 131047, "title": "Re-engagement message"}],
        )
        for update in parse_webhook(failed).updates:
            assert not self.db.run(lambda s, u=update: do_record_delivery(s, u))  # type: ignore[misc]
        return SendReceipt("wamid.LATE131047")


def test_a_window_closed_status_that_beats_our_record_of_the_send_still_offers_templates(db: Database):
    message_id = reply(db)
    OutboxRunner(db, handlers({JobKind.DELIVER: Deliverer(db, {"whatsapp": WindowClosedRace(db)})})).run(
        deliver_job(db)
    )
    stored = message(db, message_id)
    assert (stored.delivery_status, stored.delivery_error_code) == (DeliveryStatus.FAILED, NEEDS_TEMPLATE)
