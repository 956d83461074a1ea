"""The schema (DESIGN §2): one set of tables that runs on PostgreSQL and SQLite.

Uniqueness carries the dedupe guarantees, so concurrent workers can race and still agree:
a provider message id is stored once per channel, a Slack ts once per Slack channel, a lead's provider
thread maps to one conversation, and a conversation owns at most one Slack thread.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite has no time zones; it gets naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Threadline stores aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings: readable in SQL, no native enum types to migrate on PostgreSQL.
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


CHANNEL_NAME_LENGTH = 16  # a channel's name ("whatsapp", "sandbox"…), declared by its adapter


class Status(enum.StrEnum):
    OPEN = "open"  # needs attention: the lead spoke last
    PENDING = "pending"  # waiting for the lead: we spoke last
    CLOSED = "closed"


class AIMode(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # a human took over; can be resumed
    MANUAL = "manual"  # no AI for this conversation


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    NOTE = "note"


class Author(enum.StrEnum):
    LEAD = "lead"
    AI = "ai"
    MEMBER = "member"
    SYSTEM = "system"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        """Position in the life of a send; a status only ever moves to a higher rank."""
        return _DELIVERY_RANK[self]


_DELIVERY_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.READ: 4,
    # A failure reported after delivery (it happens with WhatsApp) must not hide that it was read.
    DeliveryStatus.FAILED: 2,
}


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class InboxStatus(enum.StrEnum):
    NEW = "new"  # stored, not yet processed
    RUNNING = "running"  # a runner holds it (lease in locked_until)
    DONE = "done"
    PARKED = "parked"  # our code could not process it: kept with the reason for `threadline replay`


class Health(enum.StrEnum):
    OK = "ok"
    BROKEN = "broken"


class Campaign(Base):
    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lead(Base):
    __tablename__ = "lead"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    company: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    avatar_url: Mapped[str | None] = mapped_column(String(1000))
    profile_url: Mapped[str | None] = mapped_column(String(1000))
    score: Mapped[int | None] = mapped_column(Integer)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    campaign: Mapped[Campaign | None] = relationship()


class LeadIdentity(Base):
    """How we recognise a lead: one row per (kind, value), unique, so one person is one lead.

    `kind` is a channel's name for that channel's own id of the person (a WhatsApp wa_id, a LinkedIn
    provider id), or `email` for an address, case-folded.
    """

    __tablename__ = "lead_identity"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(CHANNEL_NAME_LENGTH))
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Member(Base):
    __tablename__ = "member"

    id: Mapped[int] = mapped_column(primary_key=True)
    slack_user_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(32), default="rep")
    notify_on_assign: Mapped[bool] = mapped_column(Boolean, default=True)
    # A DM when a lead writes in a conversation assigned to them; turned off from App Home.
    notify_on_message: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Tag(Base):
    __tablename__ = "tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


conversation_tag = Table(
    "conversation_tag",
    Base.metadata,
    Column("conversation_id", ForeignKey("conversation.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True),
)


class Conversation(Base):
    __tablename__ = "conversation"
    __table_args__ = (
        UniqueConstraint("channel", "channel_account", "provider_thread_id"),
        UniqueConstraint("slack_channel", "slack_thread_ts"),
        Index("ix_conversation_status_activity", "status", "last_activity_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id"), index=True)
    channel: Mapped[str] = mapped_column(String(CHANNEL_NAME_LENGTH))
    channel_account: Mapped[str] = mapped_column(String(200))  # our number / mailbox / LinkedIn account
    provider_thread_id: Mapped[str] = mapped_column(String(500))  # the lead's wa_id, chat id, email thread
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.OPEN)
    ai_mode: Mapped[AIMode] = mapped_column(_enum(AIMode), default=AIMode.MANUAL)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"))
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_thread_ts: Mapped[str | None] = mapped_column(String(32))
    # Set just before the card is posted: if we crash after Slack answered, recovery looks for the card
    # in the channel (by its metadata) instead of posting a second one.
    slack_card_posting_at: Mapped[datetime | None]
    slack_card_hash: Mapped[str | None] = mapped_column(String(64))  # what the card shows now
    unread_count: Mapped[int] = mapped_column(Integer, default=0)
    last_inbound_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Since when the lead has been waiting for our answer (None: nobody is waiting). The SLA reminder
    # is sent once per wait: `sla_reminded_at` is cleared with `waiting_since`.
    waiting_since: Mapped[datetime | None]
    sla_reminded_at: Mapped[datetime | None]
    # Satisfaction (THREADLINE_CSAT): asked on close; the lead's 1-5 answer, kept per conversation.
    csat_asked_at: Mapped[datetime | None]
    csat_score: Mapped[int | None] = mapped_column(Integer)
    csat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}

    lead: Mapped[Lead] = relationship(lazy="joined", innerjoin=True)
    assignee: Mapped[Member | None] = relationship(lazy="joined")
    campaign: Mapped[Campaign | None] = relationship(lazy="joined")
    tags: Mapped[list[Tag]] = relationship(secondary=conversation_tag, lazy="selectin", order_by=Tag.name)


class Message(Base):
    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id"),
        UniqueConstraint("slack_channel", "slack_ts"),
        Index("ix_message_conversation_created", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    channel: Mapped[str] = mapped_column(String(CHANNEL_NAME_LENGTH))
    direction: Mapped[Direction] = mapped_column(_enum(Direction))
    author: Mapped[Author] = mapped_column(_enum(Author))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    kind: Mapped[str] = mapped_column(String(32), default="text")  # text, image, reaction, location…
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(998))  # an email's subject line
    # The whole message when `text` is only its new part (an email without quoted history and signature).
    full_text: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    reply_to_provider_id: Mapped[str | None] = mapped_column(String(200))  # e.g. what a reaction reacts to
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    provider_sent_at: Mapped[datetime | None]
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    slack_posting_at: Mapped[datetime | None]  # as on the card: marks a post whose answer may be lost
    slack_status_shown: Mapped[str | None] = mapped_column(String(16))  # delivery status Slack shows
    # A reply the channel sends in several parts records each part that reached the provider, so a retry
    # after part 2 failed sends part 2, not part 1 again.
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)
    delivery_status: Mapped[DeliveryStatus | None] = mapped_column(_enum(DeliveryStatus))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    # The failure's kind, as its sender said it (core.delivery.NEEDS_TEMPLATE, a provider's code…).
    delivery_error_code: Mapped[str | None] = mapped_column(String(64))
    # A channel's pre-approved message ({"name", "language"}), sent instead of text once the channel's
    # reply window is closed (WhatsApp's 24 hours); `text` then says which template it was.
    template: Mapped[dict[str, Any] | None]
    # The rep deleted it in Slack before it was sent: it is never sent.
    deleted_at: Mapped[datetime | None]
    edited_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversation: Mapped[Conversation] = relationship()
    member: Mapped[Member | None] = relationship(lazy="joined")


class Event(Base):
    """The audit trail: every state change, who made it, old and new. Metrics are read from here."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[Author] = mapped_column(_enum(Author))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    old: Mapped[dict[str, Any] | None]
    new: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Outbox(Base):
    """Durable work. A row is written in the same transaction as the change that calls for it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_lane", "conversation_id", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    # The fencing token: bumped by every claim; only the holder of the current value may complete it.
    lease: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[int] = mapped_column(Integer, default=1)  # 0 goes first: new cards, replies to leads
    offered_at: Mapped[datetime | None]  # handed to a worker (nudge); the sweep does not offer it again soon
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]


class Inbox(Base):
    """Every verified inbound delivery, stored raw before anything parses it (DESIGN §2, §3)."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("source", "dedupe_key"),
        Index("ix_inbox_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # the channel (or "slack") that delivered it
    dedupe_key: Mapped[str] = mapped_column(String(200))  # the provider's key, else a digest of the body
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[InboxStatus] = mapped_column(_enum(InboxStatus), default=InboxStatus.NEW)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]


class ChannelAccount(Base):
    """A connection we depend on (a WhatsApp number, a mailbox, a LinkedIn account, the Slack
    workspace) and whether it works: set broken with the reason when a provider says so."""

    __tablename__ = "channel_account"
    __table_args__ = (UniqueConstraint("channel", "account"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(CHANNEL_NAME_LENGTH))
    account: Mapped[str] = mapped_column(String(200))
    health: Mapped[Health] = mapped_column(_enum(Health), default=Health.OK)
    reason: Mapped[str | None] = mapped_column(Text)
    broken_since: Mapped[datetime | None]
    last_message_at: Mapped[datetime | None]


class EarlyStatus(Base):
    """A provider's status for a message id we have not yet recorded as sent (its webhook beat our
    commit). Applied when the send is recorded; purged after a day if no send ever claims it."""

    __tablename__ = "early_status"
    __table_args__ = (UniqueConstraint("channel", "provider_message_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(CHANNEL_NAME_LENGTH))
    provider_message_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus))
    error: Mapped[str | None] = mapped_column(Text)
    needs_template: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ProcessedEvent(Base):
    """Keys of provider deliveries already acted on (Slack event ids, webhook ids)."""

    __tablename__ = "processed_event"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AIOutcome(enum.StrEnum):
    REPLIED = "replied"  # the AI's reply was stored and queued for the lead
    HANDED_OFF = "handed_off"  # the AI paused itself and told the team why
    SKIPPED = "skipped"  # at commit time the mode had changed or a newer lead message had come


class AIDecision(Base):
    """One AI turn: what the model decided, why, from which knowledge, at what cost; and the team's
    feedback on it (👍/👎 and a correction)."""

    __tablename__ = "ai_decision"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), index=True)
    answered_message_id: Mapped[int] = mapped_column(ForeignKey("message.id"))  # the lead message answered
    reply_message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))  # None unless replied
    outcome: Mapped[str] = mapped_column(String(16))  # an AIOutcome
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    reasoning: Mapped[str | None] = mapped_column(Text)
    escalate: Mapped[bool] = mapped_column(Boolean, default=False)
    reasons: Mapped[list[Any]] = mapped_column(default=list)  # the escalation reasons, in words
    knowledge: Mapped[list[Any]] = mapped_column(default=list)  # [{"id": int|None, "source", "title"}]
    model: Mapped[str] = mapped_column(String(200))
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    feedback: Mapped[str | None] = mapped_column(String(8))  # "up" | "down"
    feedback_by_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    feedback_at: Mapped[datetime | None]
    correction: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KnowledgeStatus(enum.StrEnum):
    APPROVED = "approved"
    PENDING = "pending"
    REJECTED = "rejected"


class KnowledgeEntry(Base):
    """Something the agent may answer from, kept in the database (Markdown files in
    THREADLINE_KNOWLEDGE_DIR are read from disk). A correction starts pending until a teammate approves."""

    __tablename__ = "knowledge_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # a KnowledgeStatus
    source: Mapped[str] = mapped_column(String(32))  # "correction" | "manual"
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("ai_decision.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    reviewed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
