"""The mirror against a real database and the strict Slack stand-in: once, in order, paced, recoverable."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from bot.mirror import CARD_EVENT, MESSAGE_EVENT, Mirror
from bot.slack_client import SlackGateway
from core.actions.inbound import do_receive
from core.coordination import Coordinator, LocalCoordinator, RedisCoordinator
from core.db import Database
from core.errors import Deferred
from core.models import Conversation, Message, utcnow
from core.queries.operations import work_summary
from core.routing import Routes
from tests.conftest import SPECS
from tests.integration.test_use_cases import whatsapp_text
from tests.standins.slack_api import SlackStandIn

TOKEN = "xoxb-mirror-test"
CHANNEL = "C0LEADS"
_ids = itertools.count()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(SPECS / "slack" / "methods", bot_token=TOKEN) as standin:
        standin.add_channel(CHANNEL, "leads")
        yield standin
        assert standin.violations == []


def make_mirror(
    db: Database, slack: SlackStandIn, coordinator: Coordinator | None = None, **pace: float
) -> Mirror:
    coordinator = coordinator or LocalCoordinator()
    gateway = SlackGateway(token=TOKEN, base_url=slack.base_url, coordinator=coordinator, **pace)  # type: ignore[arg-type]
    return Mirror(db, gateway, routes=Routes(default=CHANNEL), ai_available=False)


def receive(db: Database, text: str, wa_id: str = "15550000001") -> int:
    inbound = whatsapp_text(text, message_id=f"wamid.m{next(_ids)}", wa_id=wa_id)
    return db.run(lambda s: do_receive(s, inbound, ai_available=False)).conversation_id


def test_sync_posts_card_then_messages_in_order_and_is_idempotent(db: Database, slack: SlackStandIn):
    mirror = make_mirror(db, slack)
    conversation_id = receive(db, "one")
    receive(db, "two")
    receive(db, "three")

    mirror.sync(conversation_id)
    mirror.sync(conversation_id)

    [card] = slack.messages(CHANNEL)
    assert [m["text"].split(": ", 1)[1] for m in slack.replies(CHANNEL, card["ts"])] == [
        "one",
        "two",
        "three",
    ]
    assert len(slack.calls_to("chat.postMessage")) == 4 and slack.calls_to("chat.update") == []


def test_a_card_posted_before_a_crash_is_found_not_posted_again(db: Database, slack: SlackStandIn):
    conversation_id = receive(db, "hello")
    # What a worker leaves behind if it dies after Slack answered but before it saved the ts:
    with db.transaction() as session:
        session.get_one(Conversation, conversation_id).slack_card_posting_at = utcnow()
    posted = slack_post_as_bot(
        slack, {"event_type": CARD_EVENT, "event_payload": {"conversation_id": conversation_id}}
    )

    make_mirror(db, slack).sync(conversation_id)

    assert [m["ts"] for m in slack.messages(CHANNEL)] == [posted]
    with db.sessions() as session:
        assert session.get_one(Conversation, conversation_id).slack_thread_ts == posted
    assert len(slack.replies(CHANNEL, posted)) == 1


def test_a_card_whose_post_never_left_is_posted_once(db: Database, slack: SlackStandIn):
    conversation_id = receive(db, "hello")
    with db.transaction() as session:  # died before the post reached Slack
        session.get_one(Conversation, conversation_id).slack_card_posting_at = utcnow()
    make_mirror(db, slack).sync(conversation_id)
    assert len(slack.messages(CHANNEL)) == 1


def test_a_thread_entry_posted_before_a_crash_is_not_repeated(db: Database, slack: SlackStandIn):
    mirror = make_mirror(db, slack)
    conversation_id = receive(db, "first")
    mirror.sync(conversation_id)
    receive(db, "second")
    with db.transaction() as session:
        second = session.query(Message).filter_by(text="second").one()
        second.slack_posting_at = utcnow()
        card_ts = session.get_one(Conversation, conversation_id).slack_thread_ts
        second_id = second.id
    slack_post_as_bot(
        slack, {"event_type": MESSAGE_EVENT, "event_payload": {"message_id": second_id}}, thread_ts=card_ts
    )

    mirror.sync(conversation_id)
    assert len(slack.replies(CHANNEL, card_ts)) == 2


def sync_as_the_outbox_would(mirror: Mirror, conversation_id: int) -> list[float]:
    """Run the mirror until it is done, waiting out each Deferred as the outbox's schedule does."""
    waits = []
    while True:
        try:
            mirror.sync(conversation_id)
            return waits
        except Deferred as deferred:
            waits.append(deferred.seconds)
            time.sleep(deferred.seconds)  # the scheduler's timer, played by the test


def test_a_rate_limited_post_is_deferred_not_slept_on_and_lands_once(db: Database, slack: SlackStandIn):
    slack.fail_next("chat.postMessage", retry_after=1)
    mirror = make_mirror(db, slack)
    conversation_id = receive(db, "hello")
    with pytest.raises(Deferred) as deferred:
        mirror.sync(conversation_id)
    assert deferred.value.seconds == 1  # Slack's Retry-After, handed back rather than slept on
    assert len(slack.messages(CHANNEL)) == 0

    mirror.sync(conversation_id)
    assert len(slack.messages(CHANNEL)) == 1
    assert [c.ok for c in slack.calls_to("chat.postMessage")] == [False, True, True]


def test_a_backlog_yields_the_reserved_token_to_a_new_card(db: Database, slack: SlackStandIn):
    mirror = make_mirror(db, slack, posts_per_second=1.0, burst=3)
    backlog = receive(db, "b0")
    for n in range(1, 10):
        receive(db, f"b{n}", wa_id="15550000001")
    with pytest.raises(Deferred):  # the card and one entry, then the backlog keeps one token back
        mirror.sync(backlog)
    newcomer = receive(db, "hello, I am new", wa_id="15550000002")
    with pytest.raises(Deferred) as deferred:  # the card takes the reserved token at once…
        mirror.sync(newcomer)
    with db.sessions() as session:
        assert session.get_one(Conversation, newcomer).slack_thread_ts is not None
    assert deferred.value.seconds <= 1.0  # …and its entry needs one token, the backlog two
    time.sleep(deferred.value.seconds)  # the scheduler's timer, played by the test
    mirror.sync(newcomer)
    with pytest.raises(Deferred):
        mirror.sync(backlog)


@pytest.mark.parametrize("shared", ["local", "redis"])
def test_posts_per_channel_keep_the_pace(
    db: Database, slack: SlackStandIn, shared: str, request: pytest.FixtureRequest
):
    coordinator: Coordinator = LocalCoordinator()
    if shared == "redis":
        coordinator = RedisCoordinator(
            request.getfixturevalue("redis_url"), prefix=f"threadline-test-{next(_ids)}:"
        )
    rate, burst = 10.0, 3  # faster than Slack's 1/s so the test is quick; the rule is the same
    mirror = make_mirror(db, slack, coordinator, posts_per_second=rate, burst=burst)
    conversation_id = receive(db, "m0")
    for n in range(1, 12):
        receive(db, f"m{n}")
    assert sync_as_the_outbox_would(mirror, conversation_id), "the pace deferred nothing"

    times = slack.post_times(CHANNEL)
    assert len(times) == 13
    for i, j in itertools.combinations(range(len(times)), 2):
        window = times[j] - times[i]
        assert j - i + 1 <= burst + rate * window + 1, f"{j - i + 1} posts in {window:.3f}s"


def slack_post_as_bot(slack: SlackStandIn, metadata: dict[str, object], thread_ts: str | None = None) -> str:
    from slack_sdk import WebClient

    client = WebClient(token=TOKEN, base_url=slack.base_url)
    args: dict[str, object] = {"channel": CHANNEL, "text": "posted before the crash", "metadata": metadata}
    if thread_ts:
        args["thread_ts"] = thread_ts
    return str(client.chat_postMessage(**args)["ts"])  # type: ignore[arg-type]


def test_slack_refusing_us_marks_the_connection_broken_once_and_the_work_resumes_when_fixed(
    db: Database, slack: SlackStandIn, caplog: pytest.LogCaptureFixture
):
    mirror = make_mirror(db, slack)
    conversation_id = receive(db, "hello")
    slack.fail_next("chat.postMessage", "not_in_channel")
    slack.fail_next("chat.postMessage", "not_in_channel")

    for _ in range(2):  # two tries while the app is out of the channel
        with pytest.raises(Deferred):
            mirror.sync(conversation_id)
    with db.sessions() as session:
        summary = work_summary(session)
    broken = [c for c in summary.connections if c.broken]
    assert [(c.channel, c.account, c.reason) for c in broken] == [("slack", CHANNEL, "not_in_channel")]
    said = [r for r in caplog.records if "Slack connection broken" in r.getMessage()]
    assert len(said) == 1 and "/invite" in said[0].getMessage()  # said once, with what to do

    mirror.sync(conversation_id)  # someone invited the app: the same work goes through
    assert len(slack.messages(CHANNEL)) == 1
    with db.sessions() as session:
        assert not any(c.broken for c in work_summary(session).connections)


def test_an_entry_slack_will_never_take_gives_way_to_a_notice_and_the_thread_goes_on(
    db: Database, slack: SlackStandIn
):
    mirror = make_mirror(db, slack)
    conversation_id = receive(db, "first")
    mirror.sync(conversation_id)  # the card and the first entry
    card_ts = slack.messages(CHANNEL)[0]["ts"]
    receive(db, "second")
    receive(db, "third")
    slack.fail_next("chat.postMessage", "msg_too_long")  # Slack will never take "second"

    sync_as_the_outbox_would(mirror, conversation_id)

    texts = [m["text"] for m in slack.replies(CHANNEL, card_ts)]
    assert len(texts) == 3 and "could not be shown in Slack" in texts[1] and "msg_too_long" in texts[1]
    assert texts[0].endswith("first") and texts[2].endswith("third")
