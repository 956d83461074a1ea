"""Loading rows for change, holding their locks until commit — the one place use-cases get them from.

On PostgreSQL `SELECT … FOR UPDATE` holds the row; on SQLite the whole transaction already holds the
database's write lock (`BEGIN IMMEDIATE`, see core.db). Either way a second writer waits, then reads
what the first one committed.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.errors import NotFound
from core.models import Conversation, Message, ProcessedEvent


def lock_conversation(session: Session, conversation_id: int) -> Conversation:
    conversation = session.get(
        Conversation, conversation_id, with_for_update={"of": Conversation}, populate_existing=True
    )
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} does not exist")
    return conversation


def lock_message(session: Session, message_id: int) -> Message:
    message = session.get(Message, message_id, with_for_update={"of": Message}, populate_existing=True)
    if message is None:
        raise NotFound(f"message {message_id} does not exist")
    return message


def claim_delivery_key(session: Session, source: str, key: str) -> bool:
    """Record that a provider delivery (Slack event id, webhook id) is being acted on.

    Returns False if it was recorded before: a retry that must change nothing. The row is inserted in
    the caller's transaction, so a retry racing the first delivery fails on the primary key and the
    use-case runs again, finding it.
    """
    if session.get(ProcessedEvent, (source, key)) is not None:
        return False
    session.add(ProcessedEvent(source=source, key=key))
    session.flush()
    return True
