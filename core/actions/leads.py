"""A teammate corrects who a lead is: name, company, title, email, phone, campaign.

The lead is one person across channels, so every conversation of theirs gets its card redrawn. The
campaign is set by name (compared case-insensitively, created when new) on the lead and on the
conversation the teammate edited from; that conversation's thread stays in the Slack channel it was
first posted to (routing is decided once, when the card is first posted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.actions.common import Actor, Changed, campaign_named, queue, record
from core.actions.locks import lock_conversation
from core.errors import InvalidAction
from core.identity import EMAIL, PHONE, normal_email, normal_phone
from core.models import Campaign, Conversation, Lead, LeadIdentity
from core.outbox import JobKind
from core.text import clean


def _length(column: Any) -> int:
    return int(column.type.length)


LIMITS = {
    "name": _length(Lead.name),
    "company": _length(Lead.company),
    "title": _length(Lead.title),
    "email": min(_length(Lead.email), _length(LeadIdentity.value)),
    "phone": _length(Lead.phone),
    "campaign": _length(Campaign.name),
}
PHONE_DIGITS = (6, 15)  # E.164 allows at most 15; shorter than 6 is no phone number
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_PHONE = re.compile(r"\+?[\d\s().\-/]+")


@dataclass(frozen=True)
class LeadEdit:
    """What the teammate typed; an empty field clears it."""

    name: str | None = None
    company: str | None = None
    title: str | None = None
    email: str | None = None
    phone: str | None = None
    campaign: str | None = None


class InvalidLeadEdit(InvalidAction):
    """Fields that cannot be saved as typed: `problems` maps each field to what is wrong."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {why}" for field, why in problems.items()))
        self.problems = problems


def check_lead_edit(edit: LeadEdit) -> tuple[LeadEdit, dict[str, str]]:
    """The edit as it will be stored (trimmed, phone as + and digits) and what is wrong with it."""
    values: dict[str, str | None] = {}
    problems: dict[str, str] = {}
    for field in fields(LeadEdit):
        raw = getattr(edit, field.name)
        value = " ".join(clean(raw).split()) if raw else ""
        if len(value) > LIMITS[field.name]:
            problems[field.name] = f"At most {LIMITS[field.name]} characters ({len(value)} typed)."
        values[field.name] = value or None
    email, phone = values["email"], values["phone"]
    if email and "email" not in problems and not _EMAIL.fullmatch(email):
        problems["email"] = "That is not an email address (like name@example.com)."
    if phone and "phone" not in problems:
        digits = re.sub(r"\D", "", phone)
        low, high = PHONE_DIGITS
        if not _PHONE.fullmatch(phone) or not low <= len(digits) <= high:
            problems["phone"] = f"A phone number is {low} to {high} digits, optionally starting with +."
        else:
            values["phone"] = ("+" if phone.startswith("+") else "") + digits
    return LeadEdit(**values), problems


def do_edit_lead(session: Session, conversation_id: int, edit: LeadEdit, *, actor: Actor) -> Changed:
    """Correct the lead of `conversation_id`; raises InvalidLeadEdit (nothing changed) on bad input.

    Writes one audit event with the old and new values and queues a mirror for each of the lead's
    conversations, so all their cards update.
    """
    edit, problems = check_lead_edit(edit)
    if problems:
        raise InvalidLeadEdit(problems)
    conversation = lock_conversation(session, conversation_id)
    lead = session.get_one(Lead, conversation.lead_id, with_for_update={"of": Lead}, populate_existing=True)
    old = _snapshot(lead, conversation)
    for field in ("name", "company", "title", "email", "phone"):
        setattr(lead, field, getattr(edit, field))
    campaign = campaign_named(session, edit.campaign) if edit.campaign else None
    lead.campaign = campaign
    conversation.campaign = campaign
    _recognise(session, lead, EMAIL, normal_email(edit.email))
    _recognise(session, lead, PHONE, normal_phone(edit.phone))
    new = _snapshot(lead, conversation)
    if new == old:
        return Changed(conversation.id, changed=False)
    session.flush()
    record(session, conversation, "lead", actor, old=old, new=new)
    for each in session.scalars(select(Conversation).where(Conversation.lead_id == lead.id)):
        queue(session, JobKind.MIRROR, each)
    return Changed(conversation.id, changed=True)


def refresh_other_cards(session: Session, conversation: Conversation) -> None:
    """Redraw the cards of the lead's other threads (each links to the lead's threads elsewhere)."""
    others = session.scalars(
        select(Conversation).where(
            Conversation.lead_id == conversation.lead_id,
            Conversation.id != conversation.id,
            Conversation.slack_thread_ts.is_not(None),
        )
    )
    for other in others:
        queue(session, JobKind.MIRROR, other)


def _snapshot(lead: Lead, conversation: Conversation) -> dict[str, Any]:
    values: dict[str, Any] = {field: getattr(lead, field) for field in ("name", "company", "title")}
    values |= {"email": lead.email, "phone": lead.phone, "lead_id": lead.id}
    values["campaign"] = conversation.campaign.name if conversation.campaign is not None else None
    return values


def _recognise(session: Session, lead: Lead, kind: str, value: str | None) -> None:
    """Messages from this address or number join this lead from now on — unless it already belongs
    to someone."""
    if value is None:
        return
    taken = session.scalar(
        select(LeadIdentity.id).where(LeadIdentity.kind == kind, LeadIdentity.value == value)
    )
    if taken is None:
        session.add(LeadIdentity(lead_id=lead.id, kind=kind, value=value))
