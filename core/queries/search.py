"""`/leads`: conversations by owner, status, campaign, tag, AI mode, period and free text, newest first.

Free text: every word must be found somewhere in the conversation — the lead's name, company or email
(a substring, case-insensitive), or the text of one of its messages (a word starting so, from three
letters on: "a" or "pr" would match most messages). Messages include teammates' internal notes:
whoever lists conversations may read their threads, notes and all. Deleted messages are not searched.
PostgreSQL answers from a GIN full-text index over message text and trigram indexes over the lead's
fields, SQLite from an FTS5 table over message text (migration 0006).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, Integer, column, exists, func, literal_column, or_, select, table, text
from sqlalchemy.orm import Session

from core.actions.conversation import normalize_tag
from core.models import (
    AIMode,
    Campaign,
    Conversation,
    Direction,
    Lead,
    Message,
    Status,
    Tag,
    conversation_tag,
)

PAGE_SIZE = 10
PREFIX_FROM = 3  # a word this long matches words starting with it; a shorter one only itself
_FTS = table("message_fts", column("rowid", Integer))  # SQLite only (migration 0006)
_WORD = re.compile(r"[^\W_]+")  # letters and digits: what both full-text parsers call a word


class Owner(enum.StrEnum):
    ANYONE = "all"
    MINE = "mine"
    UNASSIGNED = "unassigned"


class Mode(enum.StrEnum):
    AI = "ai"  # AI active
    MANUAL = "manual"  # AI paused or manual only


class Period(enum.StrEnum):
    TODAY = "today"
    WEEK = "week"
    MONTH = "month"
    ALL = "all"

    def since(self, now: datetime, zone: tzinfo) -> datetime | None:
        """Where the period starts: today from the reader's midnight, a week or month back from now."""
        if self is Period.TODAY:
            local = now.astimezone(zone)
            return local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self is Period.WEEK:
            return now - timedelta(days=7)
        if self is Period.MONTH:
            return now - timedelta(days=30)
        return None


@dataclass(frozen=True)
class LeadFilter:
    owner: Owner = Owner.ANYONE
    closed: bool = False  # the closed conversations instead of the open and pending ones
    campaign: str | None = None
    tags: tuple[str, ...] = ()  # every one of them
    mode: Mode | None = None
    period: Period = Period.ALL
    words: tuple[str, ...] = ()  # free text, every word must be found


@dataclass(frozen=True)
class LeadRow:
    """One line of the list, in plain values."""

    conversation_id: int
    name: str | None
    phone: str | None
    email: str | None
    company: str | None
    channel: str
    slack_channel: str | None
    slack_thread_ts: str | None
    status: Status
    ai_mode: AIMode
    unread: int
    last_activity_at: datetime
    preview: str | None  # the last message between lead and team (notes and deleted ones left out)
    preview_from_lead: bool


@dataclass(frozen=True)
class LeadPage:
    rows: list[LeadRow]
    offset: int
    total: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.rows) < self.total


def search_leads(
    session: Session,
    lead_filter: LeadFilter,
    *,
    channels: Collection[str],
    member_id: int | None,
    since: datetime | None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> LeadPage:
    """A page of the conversations in `channels` that match, newest activity first.

    `member_id` is the reader (None: not a member yet, so nothing is theirs); `since` is where the
    filter's period starts (`Period.since`), given by the caller who knows the reader's time zone.
    """
    if lead_filter.owner is Owner.MINE and member_id is None:
        return LeadPage([], offset, 0)
    where = _conditions(session, lead_filter, channels=channels, member_id=member_id, since=since)
    # The page's ids first, the total riding along (a window count: one pass over the matches); the
    # lead's columns are joined to those ten rows only, not to every match.
    page = (
        select(
            Conversation.id.label("page_id"),
            Conversation.last_activity_at.label("page_at"),
            func.count().over().label("total"),
        )
        .where(*where)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .offset(offset)
        .limit(limit)
        .subquery()
    )
    found = (
        select(*_ROW_COLUMNS, page.c.total)
        .join(page, page.c.page_id == Conversation.id)
        .join(Lead, Lead.id == Conversation.lead_id)
        .order_by(page.c.page_at.desc(), page.c.page_id.desc())
    )
    found_rows = list(session.execute(found))
    if found_rows:
        total = int(found_rows[0].total)
    elif offset == 0:
        total = 0
    else:  # past the end (a stale Next): say how many there are now
        total = session.scalar(select(func.count()).select_from(Conversation).where(*where)) or 0
    previews = _previews(session, [row.id for row in found_rows])
    rows = [_row(row, previews.get(row.id)) for row in found_rows]
    return LeadPage(rows, offset, total)


def _conditions(
    session: Session,
    lead_filter: LeadFilter,
    *,
    channels: Collection[str],
    member_id: int | None,
    since: datetime | None,
) -> list[ColumnElement[bool]]:
    statuses = (Status.CLOSED,) if lead_filter.closed else (Status.OPEN, Status.PENDING)
    where: list[ColumnElement[bool]] = [
        Conversation.slack_channel.in_(list(channels)),
        Conversation.status.in_(statuses),
    ]
    if lead_filter.owner is Owner.MINE:
        where.append(Conversation.assignee_id == member_id)
    elif lead_filter.owner is Owner.UNASSIGNED:
        where.append(Conversation.assignee_id.is_(None))
    if lead_filter.campaign is not None:
        campaigns = select(Campaign.id).where(func.lower(Campaign.name) == lead_filter.campaign.lower())
        where.append(Conversation.campaign_id.in_(campaigns.scalar_subquery()))
    for tag in lead_filter.tags:
        tagged = (
            select(conversation_tag.c.conversation_id)
            .join(Tag, Tag.id == conversation_tag.c.tag_id)
            .where(Tag.name == normalize_tag(tag), conversation_tag.c.conversation_id == Conversation.id)
        )
        where.append(exists(tagged))
    if lead_filter.mode is Mode.AI:
        where.append(Conversation.ai_mode == AIMode.ACTIVE)
    elif lead_filter.mode is Mode.MANUAL:
        where.append(Conversation.ai_mode.in_((AIMode.PAUSED, AIMode.MANUAL)))
    if since is not None:
        where.append(Conversation.last_activity_at >= since)
    sqlite = session.get_bind().dialect.name == "sqlite"
    where.extend(_found(word, sqlite=sqlite) for word in lead_filter.words)
    return where


def _found(word: str, *, sqlite: bool) -> ColumnElement[bool]:
    """The conversation mentions `word`: in its lead's name, company or email, or in a message."""
    pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    leads = select(Lead.id).where(
        or_(*(field.ilike(pattern, escape="\\") for field in (Lead.name, Lead.company, Lead.email)))
    )
    in_lead = Conversation.lead_id.in_(leads.scalar_subquery())
    tokens = _WORD.findall(word.lower())
    if not tokens:  # punctuation only ("+", "@"): only a lead's fields can hold it
        return in_lead
    said = select(Message.conversation_id).where(Message.deleted_at.is_(None))
    if sqlite:
        # Each token a quoted prefix: "pric"* finds pricing; quoting makes FTS5 syntax plain text.
        query = " ".join(f'"{token}"*' if len(token) >= PREFIX_FROM else f'"{token}"' for token in tokens)
        matching = select(_FTS.c.rowid).where(literal_column("message_fts").op("MATCH")(query))
        said = said.where(Message.id.in_(matching.scalar_subquery()))
    else:
        query = " & ".join(f"{token}:*" if len(token) >= PREFIX_FROM else token for token in tokens)
        said = said.where(
            func.to_tsvector(text("'simple'"), Message.text).bool_op("@@")(
                func.to_tsquery(text("'simple'"), query)
            )
        )
    return or_(in_lead, Conversation.id.in_(said.scalar_subquery()))


def _previews(session: Session, conversation_ids: list[int]) -> dict[int, tuple[str, Direction]]:
    if not conversation_ids:
        return {}
    last = (
        select(func.max(Message.id))
        .where(
            Message.conversation_id.in_(conversation_ids),
            Message.direction != Direction.NOTE,
            Message.deleted_at.is_(None),
        )
        .group_by(Message.conversation_id)
    )
    found = session.execute(
        select(Message.conversation_id, Message.text, Message.direction).where(
            Message.id.in_(last.scalar_subquery())
        )
    )
    return {conversation_id: (said, direction) for conversation_id, said, direction in found}


_ROW_COLUMNS = (
    Conversation.id,
    Lead.name,
    Lead.phone,
    Lead.email,
    Lead.company,
    Conversation.channel,
    Conversation.slack_channel,
    Conversation.slack_thread_ts,
    Conversation.status,
    Conversation.ai_mode,
    Conversation.unread_count,
    Conversation.last_activity_at,
)


def _row(row: Any, preview: tuple[str, Direction] | None) -> LeadRow:
    return LeadRow(
        conversation_id=row.id,
        name=row.name,
        phone=row.phone,
        email=row.email,
        company=row.company,
        channel=row.channel,
        slack_channel=row.slack_channel,
        slack_thread_ts=row.slack_thread_ts,
        status=row.status,
        ai_mode=row.ai_mode,
        unread=row.unread_count,
        last_activity_at=row.last_activity_at,
        preview=preview[0] if preview is not None else None,
        preview_from_lead=preview is not None and preview[1] == Direction.INBOUND,
    )
