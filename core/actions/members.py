"""Teammates: registered the first time they act in Slack."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.models import Member
from core.queries.lookup import find_member


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
