"""Teammates: registered the first time they act in Slack; their notification settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.models import Author, Event, Member
from core.queries.lookup import find_member


@dataclass(frozen=True)
class Notifications:
    """Which direct messages a teammate gets."""

    on_assign: bool  # a conversation was assigned to them
    on_message: bool  # a lead wrote in a conversation assigned to them


def do_register_member(session: Session, slack_user_id: str, *, name: str, email: str | None) -> Member:
    """Add a teammate the first time they act in Slack (or refresh their name and email)."""
    member = find_member(session, slack_user_id)
    if member is None:
        member = Member(slack_user_id=slack_user_id, name=name, email=email)
        session.add(member)
    else:
        member.name, member.email = name, email or member.email
    session.flush()  # the same person's two first clicks at once: one insert wins, the other retries
    return member


def do_set_notifications(
    session: Session, slack_user_id: str, wanted: Notifications, *, name: str, email: str | None
) -> Notifications:
    """Set which DMs a teammate gets (from App Home, where they may not have acted before: registered
    here if new). Audited; returns the settings now in force."""
    member = do_register_member(session, slack_user_id, name=name, email=email)
    old = Notifications(on_assign=member.notify_on_assign, on_message=member.notify_on_message)
    if old != wanted:
        member.notify_on_assign, member.notify_on_message = wanted.on_assign, wanted.on_message
        session.add(
            Event(
                conversation_id=None,
                kind="notifications",
                actor=Author.MEMBER,
                member_id=member.id,
                old={"on_assign": old.on_assign, "on_message": old.on_message},
                new={"on_assign": wanted.on_assign, "on_message": wanted.on_message},
            )
        )
        session.flush()
    return wanted
