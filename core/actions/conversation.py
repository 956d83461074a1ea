"""The card's buttons: take over, resume AI, manual only, assign, tags, close, reopen."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.actions.common import Actor, Changed, record
from core.actions.locks import lock_conversation
from core.actions.satisfaction import ask_for_rating
from core.actions.transitions import finish, set_ai_mode, set_assignee, set_status
from core.errors import InvalidAction
from core.models import AIMode, Status, Tag

TAG_LENGTH = 64
MAX_TAGS = 50  # on one conversation
MAX_NEW_TAGS = 10  # created by one change: nobody means to invent hundreds of tags with one click
AI_UNAVAILABLE = "The AI agent is not running on this server, so it cannot take the conversation back."


def do_take_over(session: Session, conversation_id: int, *, actor: Actor) -> Changed:
    """A teammate handles it from here: the AI pauses and, if nobody has it, it is theirs."""
    conversation = lock_conversation(session, conversation_id)
    changed = False
    if conversation.ai_mode == AIMode.ACTIVE:
        changed |= set_ai_mode(session, conversation, AIMode.PAUSED, actor)
    if conversation.assignee_id is None and actor.member_id is not None:
        changed |= set_assignee(session, conversation, actor.member_id, actor)
    return finish(session, conversation, changed)


def do_resume_ai(session: Session, conversation_id: int, *, actor: Actor, ai_available: bool) -> Changed:
    if not ai_available:
        raise InvalidAction(AI_UNAVAILABLE)
    conversation = lock_conversation(session, conversation_id)
    if conversation.status == Status.CLOSED:
        raise InvalidAction("Reopen the conversation before handing it back to the AI.")
    return finish(session, conversation, set_ai_mode(session, conversation, AIMode.ACTIVE, actor))


def do_set_manual(session: Session, conversation_id: int, *, actor: Actor) -> Changed:
    conversation = lock_conversation(session, conversation_id)
    return finish(session, conversation, set_ai_mode(session, conversation, AIMode.MANUAL, actor))


def do_assign(session: Session, conversation_id: int, assignee_id: int | None, *, actor: Actor) -> Changed:
    conversation = lock_conversation(session, conversation_id)
    return finish(session, conversation, set_assignee(session, conversation, assignee_id, actor))


def do_set_tags(session: Session, conversation_id: int, names: list[str], *, actor: Actor) -> Changed:
    """Make the conversation's tags exactly `names`; unknown names become new tags."""
    conversation = lock_conversation(session, conversation_id)
    wanted = sorted({normalize_tag(name) for name in names if normalize_tag(name)})
    old = sorted(tag.name for tag in conversation.tags)
    if wanted == old:
        return Changed(conversation.id, changed=False)
    if len(wanted) > MAX_TAGS:
        raise InvalidAction(f"A conversation can have at most {MAX_TAGS} tags ({len(wanted)} asked for).")
    known = set(session.scalars(select(Tag.name).where(Tag.name.in_(wanted))))
    if len(set(wanted) - known) > MAX_NEW_TAGS:
        raise InvalidAction(f"At most {MAX_NEW_TAGS} new tags at a time ({len(set(wanted) - known)} new).")
    conversation.tags = [_get_or_create_tag(session, name) for name in wanted]
    record(session, conversation, "tags", actor, old={"tags": old}, new={"tags": wanted})
    return finish(session, conversation, True)


def do_add_tag(session: Session, conversation_id: int, name: str, *, actor: Actor) -> Changed:
    conversation = lock_conversation(session, conversation_id)
    names = [tag.name for tag in conversation.tags]
    return do_set_tags(session, conversation_id, [*names, name], actor=actor)


def do_remove_tag(session: Session, conversation_id: int, name: str, *, actor: Actor) -> Changed:
    conversation = lock_conversation(session, conversation_id)
    names = [tag.name for tag in conversation.tags if tag.name != normalize_tag(name)]
    return do_set_tags(session, conversation_id, names, actor=actor)


def do_close(session: Session, conversation_id: int, *, actor: Actor, ask_rating: bool = False) -> Changed:
    """Close it; with `ask_rating` (THREADLINE_CSAT) the lead is asked for a 1-5 rating."""
    conversation = lock_conversation(session, conversation_id)
    changed = set_status(session, conversation, Status.CLOSED, actor)
    if changed and ask_rating:
        ask_for_rating(session, conversation, actor)
    return finish(session, conversation, changed)


def do_reopen(session: Session, conversation_id: int, *, actor: Actor) -> Changed:
    """Reopen by hand: it needs attention again."""
    conversation = lock_conversation(session, conversation_id)
    if conversation.status != Status.CLOSED:
        return Changed(conversation.id, changed=False)
    return finish(session, conversation, set_status(session, conversation, Status.OPEN, actor))


def normalize_tag(name: str) -> str:
    return " ".join(name.strip().lower().split())[:TAG_LENGTH]


def _get_or_create_tag(session: Session, name: str) -> Tag:
    tag = session.scalar(select(Tag).where(Tag.name == name))
    if tag is None:
        tag = Tag(name=name)
        session.add(tag)
        session.flush()  # two teammates creating the same new tag at once: one retries and finds it
    return tag
