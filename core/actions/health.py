"""Whether the connections we depend on work: a channel account (or Slack itself) broken or healthy."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import outbox
from core.models import ChannelAccount, Health, utcnow
from core.outbox import JobKind
from core.ports import AccountHealth


def do_mark_broken(session: Session, channel: str, account: str, reason: str) -> bool:
    """Record that `account` of `channel` needs a person. Returns True if it was not known broken."""
    row = _row(session, channel, account)
    if row.health == Health.BROKEN:
        row.reason = reason
        return False
    row.health, row.reason, row.broken_since = Health.BROKEN, reason, utcnow()
    return True


def do_mark_healthy(session: Session, channel: str, accounts: Sequence[str]) -> list[str]:
    """Record that these accounts work again; returns those that had been broken."""
    rows = session.scalars(
        select(ChannelAccount)
        .where(
            ChannelAccount.channel == channel,
            ChannelAccount.account.in_(accounts),
            ChannelAccount.health == Health.BROKEN,
        )
        .with_for_update()
    )
    healed = []
    for row in rows:
        row.health, row.reason, row.broken_since = Health.OK, None, None
        healed.append(row.account)
    return healed


def do_record_account_health(session: Session, health: AccountHealth) -> bool:
    """A lead channel's account is broken or works again, as its provider (or a send) says. A change
    is said once in Slack (`channel_health`); returns whether it changed."""
    if health.ok:
        changed = bool(do_mark_healthy(session, health.channel, [health.account]))
    else:
        reason = health.reason or "the provider says this account is not connected"
        changed = do_mark_broken(session, health.channel, health.account, reason)
    if changed:
        payload: dict[str, object] = {
            "channel": health.channel,
            "account": health.account,
            "ok": health.ok,
            "reason": health.reason,
        }
        outbox.queue(session, JobKind.CHANNEL_HEALTH, None, payload=payload, priority=0)
    return changed


def any_broken(session: Session, channel: str) -> bool:
    return (
        session.scalar(
            select(ChannelAccount.id)
            .where(ChannelAccount.channel == channel, ChannelAccount.health == Health.BROKEN)
            .limit(1)
        )
        is not None
    )


def _row(session: Session, channel: str, account: str) -> ChannelAccount:
    row = session.scalar(
        select(ChannelAccount)
        .where(ChannelAccount.channel == channel, ChannelAccount.account == account)
        .with_for_update()
    )
    if row is None:
        row = ChannelAccount(channel=channel, account=account, health=Health.OK)
        session.add(row)
        session.flush()  # a concurrent insert of the same account fails here and the use-case retries
    return row
