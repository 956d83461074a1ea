"""`/leads` against real databases (SQLite and PostgreSQL): every filter, search and the stats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.leads_grammar import GrammarError, ListRequest, parse
from core import migrate
from core.db import Database
from core.models import AIMode, Author, Campaign, Conversation, Direction, Lead, Member, Message, Status, Tag
from core.queries.search import LeadFilter, LeadPage, search_leads
from core.queries.stats import conversation_stats

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _conversation(
    session: Session,
    name: str,
    *,
    slack_channel: str = "C_SALES",
    status: Status = Status.OPEN,
    created: datetime = NOW - timedelta(days=1),
    **fields: object,
) -> Conversation:
    lead = Lead(name=name, created_at=created)
    conversation = Conversation(
        lead=lead,
        channel="whatsapp",
        channel_account="PHONE1",
        provider_thread_id=name,
        status=status,
        slack_channel=slack_channel,
        slack_thread_ts=f"{len(name)}.{abs(hash(name)) % 10**6:06d}",
        created_at=created,
        last_activity_at=created,
        **fields,
    )
    session.add(conversation)
    session.flush()
    return conversation


def _sent(session: Session, conversation: Conversation, author: Author, at: datetime) -> None:
    session.add(
        Message(
            conversation_id=conversation.id,
            channel="whatsapp",
            direction=Direction.OUTBOUND,
            author=author,
            text="hello",
            created_at=at,
        )
    )


def test_stats_count_what_happened_in_the_period_in_the_readers_channels(db: Database) -> None:
    week_ago = NOW - timedelta(days=7)
    with db.transaction() as session:
        rep = Member(slack_user_id="U_REP", name="Rep")
        session.add(rep)
        session.flush()
        fast = _conversation(
            session,
            "Fast",
            first_response_at=NOW - timedelta(days=1) + timedelta(seconds=60),
            assignee_id=rep.id,
        )
        fast.last_activity_at = NOW
        slow = _conversation(
            session,
            "Slow",
            status=Status.CLOSED,
            first_response_at=NOW - timedelta(days=1) + timedelta(seconds=300),
            closed_at=NOW - timedelta(hours=1),
            csat_score=4,
            csat_at=NOW - timedelta(minutes=30),
            ai_mode=AIMode.ACTIVE,
        )
        _conversation(session, "Medium", first_response_at=NOW - timedelta(days=1) + timedelta(seconds=120))
        old = _conversation(
            session,
            "Old",
            created=NOW - timedelta(days=30),
            status=Status.CLOSED,
            first_response_at=NOW - timedelta(days=30),
            closed_at=NOW - timedelta(days=29),
            csat_score=1,
            csat_at=NOW - timedelta(days=29),
        )
        hidden = _conversation(
            session, "Elsewhere", slack_channel="C_PRIVATE", first_response_at=NOW, csat_score=5, csat_at=NOW
        )
        for conversation, author in [(fast, Author.MEMBER), (slow, Author.AI), (slow, Author.AI)]:
            _sent(session, conversation, author, NOW - timedelta(hours=2))
        _sent(session, old, Author.MEMBER, NOW - timedelta(days=29))
        _sent(session, hidden, Author.MEMBER, NOW)
        rep_id = rep.id

    with db.transaction() as session:
        week = conversation_stats(session, since=week_ago, channels=["C_SALES"])
        everything = conversation_stats(session, since=None, channels=["C_SALES"])
        mine = conversation_stats(session, since=week_ago, channels=["C_SALES"], member_id=rep_id)
        nothing = conversation_stats(session, since=week_ago, channels=[])

    assert week.conversations == 3
    assert week.first_response_median_seconds == 120
    assert week.first_response_mean_seconds == 160
    assert (week.resolved, week.resolution_rate) == (1, 1 / 3)
    assert (week.ai_messages, week.member_messages, week.ai_share) == (2, 1, 2 / 3)
    assert (week.csat_count, week.csat_average) == (1, 4.0)

    assert everything.conversations == 4
    assert everything.first_response_median_seconds == 90  # 0, 60, 120, 300: the middle two
    assert (everything.csat_count, everything.csat_average) == (2, 2.5)
    assert everything.member_messages == 2

    assert (mine.conversations, mine.first_response_median_seconds, mine.member_messages) == (1, 60, 1)
    assert mine.ai_share == 0 and mine.csat_count == 0 and mine.csat_average is None

    assert nothing.conversations == 0
    assert nothing.first_response_median_seconds is None and nothing.resolution_rate is None
    assert nothing.ai_share is None and nothing.csat_average is None


# --- /leads: a known set of conversations across routed channels ---------------------------------------

VISIBLE = ["C_EAST", "C_WEST"]  # the reader is in these; C_BOARD is someone else's


@dataclass(frozen=True)
class Seed:
    name: str | None
    company: str
    email: str
    slack_channel: str
    status: Status
    assignee: str | None
    tags: tuple[str, ...]
    campaign: str | None
    mode: AIMode
    age: timedelta
    said: tuple[tuple[Direction, str], ...]
    deleted: str | None = None  # one more message, deleted in Slack
    phone: str | None = None


IN, OUT, NOTE = Direction.INBOUND, Direction.OUTBOUND, Direction.NOTE
SEEDS = {
    "jane": Seed("Jane Doe", "Acme Corp", "jane@acme.com", "C_EAST", Status.OPEN, "ana", ("vip",),
                 "Spring Sale", AIMode.ACTIVE, timedelta(hours=1), ((IN, "Hi, what's your pricing?"),)),
    "john": Seed("John Smith", "Globex", "john@globex.io", "C_EAST", Status.PENDING, "bob", ("demo",),
                 "Winter", AIMode.PAUSED, timedelta(days=2), ((IN, "Can we book a demo"), (OUT, "Sure, Tuesday?"))),
    "maria": Seed("Maria Garcia", "Initech", "maria@initech.com", "C_WEST", Status.OPEN, None, ("vip", "demo"),
                  "Spring Sale", AIMode.MANUAL, timedelta(days=10),
                  ((IN, "Need a quote"), (NOTE, "internal: discount approved"))),
    "wei": Seed("Wei Zhang", "Acme Labs", "wei@labs.cn", "C_WEST", Status.CLOSED, "ana", ("vip",), None,
                AIMode.ACTIVE, timedelta(days=40), ((IN, "Thanks, pricing works"),)),
    "olga": Seed("Olga Hidden", "Acme Secret", "olga@secret.org", "C_BOARD", Status.OPEN, "ana", ("vip",),
                 "Spring Sale", AIMode.ACTIVE, timedelta(minutes=5), ((IN, "pricing for the board"),)),
    "pat": Seed("Pat Gone", "Globex", "pat@globex.io", "C_EAST", Status.CLOSED, None, (), None,
                AIMode.MANUAL, timedelta(hours=3), ((IN, "bye"),), deleted="pricing secret"),
    "nameless": Seed(None, "100% Fun", "", "C_WEST", Status.OPEN, None, (), None, AIMode.ACTIVE,
                     timedelta(hours=5), ((OUT, "hello there"),), phone="+15550001"),
}  # fmt: skip


@pytest.fixture
def seeded(db: Database) -> int:
    """The seeds stored; returns the reader's (Ana's) member id."""
    with db.transaction() as session:
        members = {slack: Member(slack_user_id=f"U_{slack.upper()}", name=slack) for slack in ("ana", "bob")}
        tags = {name: Tag(name=name) for name in ("vip", "demo")}
        campaigns = {name: Campaign(name=name) for name in ("Spring Sale", "Winter")}
        session.add_all([*members.values(), *tags.values(), *campaigns.values()])
        session.flush()
        for number, (key, seed) in enumerate(SEEDS.items()):
            at = NOW - seed.age
            conversation = Conversation(
                lead=Lead(name=seed.name, company=seed.company, email=seed.email or None, phone=seed.phone),
                channel="whatsapp",
                channel_account="PHONE1",
                provider_thread_id=key,
                status=seed.status,
                ai_mode=seed.mode,
                assignee_id=members[seed.assignee].id if seed.assignee else None,
                campaign_id=campaigns[seed.campaign].id if seed.campaign else None,
                slack_channel=seed.slack_channel,
                slack_thread_ts=f"1700000000.{number:06d}",
                created_at=at - timedelta(hours=1),
                last_activity_at=at,
                tags=[tags[name] for name in seed.tags],
            )
            session.add(conversation)
            session.flush()
            said = [*seed.said, *([(IN, seed.deleted)] if seed.deleted else [])]
            for direction, words in said:
                author = {IN: Author.LEAD, OUT: Author.MEMBER, NOTE: Author.MEMBER}[direction]
                message = Message(
                    conversation_id=conversation.id,
                    channel="whatsapp",
                    direction=direction,
                    author=author,
                    text=words,
                    created_at=at,
                    deleted_at=at if words == seed.deleted else None,
                )
                session.add(message)
                session.flush()
        return members["ana"].id


def _names(db: Database, command: str, reader: int | None, **page: int) -> list[str]:
    return [row.name or row.phone or "" for row in _page(db, command, reader, **page).rows]


def _page(db: Database, command: str, reader: int | None, **page: int) -> LeadPage:
    request = parse(command)
    assert isinstance(request, ListRequest)
    since = request.lead_filter.period.since(NOW, UTC)
    with db.sessions() as session:
        return search_leads(
            session, request.lead_filter, channels=VISIBLE, member_id=reader, since=since, **page
        )


FIRST = {seed.name or seed.phone: key for key, seed in SEEDS.items()}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("", ["jane", "nameless", "john", "maria"]),  # open and pending, newest activity first
        ("all", ["jane", "nameless", "john", "maria"]),
        ("mine", ["jane"]),
        ("mine closed", ["wei"]),
        ("unassigned", ["nameless", "maria"]),
        ("closed", ["pat", "wei"]),
        ("closed unassigned", ["pat"]),
        ('campaign:"Spring Sale"', ["jane", "maria"]),
        ("campaign:WINTER", ["john"]),
        ("campaign:nothing", []),
        ("tag:vip", ["jane", "maria"]),
        ("tag:vip tag:demo", ["maria"]),
        ("tag:VIP closed", ["wei"]),
        ("tag:unknown", []),
        ("mode:ai", ["jane", "nameless"]),
        ("mode:manual", ["john", "maria"]),
        ("period:today", ["jane", "nameless"]),
        ("period:week", ["jane", "nameless", "john"]),
        ("period:month", ["jane", "nameless", "john", "maria"]),
        ("period:all closed", ["pat", "wei"]),
        ("period:month closed", ["pat"]),
        ("pricing", ["jane"]),  # the board's lead and the closed ones are not here
        ("closed pricing", ["wei"]),  # not Pat: their "pricing" message was deleted
        ("pric", ["jane"]),  # a word's start finds it
        ("pr", []),  # not from two letters: they would match most messages
        ("by", []),
        ("bye", []),  # a whole short word does (Pat's "bye" is closed)
        ("closed bye", ["pat"]),
        ("acme", ["jane"]),  # a company
        ("acme closed", ["wei"]),
        ("jane@acme.com", ["jane"]),  # an email
        ("GLOBEX", ["john"]),
        ("smith", ["john"]),  # a name
        ("demo", ["john"]),  # a message; tags are searched with tag:
        ("discount", ["maria"]),  # an internal note
        ("quote discount", ["maria"]),  # every word, anywhere in the conversation
        ("jane pricing", ["jane"]),
        ("jane demo", []),
        ('"book a demo"', ["john"]),
        ("%", ["nameless"]),  # a LIKE wildcard is a character like any other
        ("_", []),
        ("zzz", []),
        ("mine tag:vip pricing", ["jane"]),
        ("unassigned mode:ai fun", ["nameless"]),
        ("mode:manual period:week", ["john"]),
        ("tuesday", ["john"]),  # our own reply
    ],
)
def test_every_leads_variant_returns_exactly_the_expected_conversations(
    db: Database, seeded: int, command: str, expected: list[str]
):
    found = [FIRST[name] for name in _names(db, command, seeded)]
    assert found == expected


def test_a_reader_who_is_not_a_member_yet_has_nothing_of_their_own(db: Database, seeded: int):
    assert _names(db, "mine", None) == []
    assert len(_names(db, "unassigned", None)) == 2


def test_pages_and_previews(db: Database, seeded: int):
    first = _page(db, "", seeded, limit=3)
    second = _page(db, "", seeded, offset=3, limit=3)
    beyond = _page(db, "", seeded, offset=9, limit=3)
    assert [r.name or r.phone for r in first.rows] == ["Jane Doe", "+15550001", "John Smith"]
    assert (first.total, first.has_more, second.has_more) == (4, True, False)
    assert [r.name for r in second.rows] == ["Maria Garcia"]
    assert (beyond.rows, beyond.total) == ([], 4)

    rows = {row.name: row for row in [*first.rows, *second.rows, *_page(db, "closed", seeded).rows]}
    assert (rows["Jane Doe"].preview, rows["Jane Doe"].preview_from_lead) == (
        "Hi, what's your pricing?",
        True,
    )
    assert (rows["John Smith"].preview, rows["John Smith"].preview_from_lead) == ("Sure, Tuesday?", False)
    assert rows["Maria Garcia"].preview == "Need a quote"  # not the internal note after it
    assert rows["Pat Gone"].preview == "bye"  # not the deleted message
    assert rows["Jane Doe"].slack_channel == "C_EAST" and rows["Jane Doe"].slack_thread_ts


def test_search_follows_edits_and_deletes_of_message_text(db: Database, seeded: int):
    with db.transaction() as session:
        message = session.scalars(select(Message).where(Message.text == "Can we book a demo")).one()
        message.text = "Can we book a walkthrough"
    assert _names(db, "walkthrough", seeded) == ["John Smith"]
    assert _names(db, "demo", seeded) == []
    with db.transaction() as session:
        session.execute(delete(Message).where(Message.text == "Can we book a walkthrough"))
    assert _names(db, "walkthrough", seeded) == []


def test_sqlite_search_triggers_come_back_after_a_table_rebuild(tmp_path: Path):
    """A later batch migration that rebuilds `message` drops its triggers; every upgrade restores them."""
    db = Database(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    migrate.upgrade(db.engine)
    with db.engine.begin() as connection:
        for trigger in ("message_fts_insert", "message_fts_delete", "message_fts_update"):
            connection.exec_driver_sql(f"DROP TRIGGER {trigger}")  # as DROP TABLE message would
    migrate.upgrade(db.engine)  # nothing to migrate; the triggers are put back all the same
    with db.transaction() as session:
        conversation = _conversation(session, "Rebuilt")
        _sent(session, conversation, Author.MEMBER, NOW)
        session.flush()
        session.execute(select(Message)).scalar_one().text = "walkthrough booked"
    with db.sessions() as session:
        page = search_leads(
            session, LeadFilter(words=("walkthrough",)), channels=["C_SALES"], member_id=None, since=None
        )
    assert [row.name for row in page.rows] == ["Rebuilt"]
    db.dispose()


def test_the_search_migration_goes_down_and_up_again(db: Database, seeded: int):
    migrate.downgrade(db.engine, "0005")
    migrate.upgrade(db.engine)
    assert _names(db, "discount", seeded) == ["Maria Garcia"]  # indexed again, existing messages too


@pytest.mark.parametrize(
    "command",
    ['"\\""', "*", "NEAR", "AND OR NOT", "^x", "'", "\\", "a:b:c", '"x" "y*"', "ñandú", "²", "🙂", "é" * 200],
)
def test_words_that_mean_something_to_a_search_engine_are_only_words(db: Database, seeded: int, command: str):
    try:
        request = parse(command)
    except GrammarError:
        return
    assert isinstance(request, ListRequest)
    with db.sessions() as session:
        page = search_leads(session, request.lead_filter, channels=VISIBLE, member_id=seeded, since=None)
    assert page.rows == []
