"""What a lead's message points at: the entry it replies to, the entry it reacts to (bot/mirror.py).

A reaction shows ON the entry it reacts to: the bot adds the emoji to that Slack message (the lead's
own entry or a rep's reply), and takes the lead's earlier emoji on it away (WhatsApp keeps one reaction
per person per message; an empty one is a reaction taken back). It is recorded as shown in
`slack_status_shown` (an inbound message has no delivery status to show there), so a mirror run again
does not redo it. A reaction to a message Threadline does not have (or not in Slack, or an emoji Slack
cannot name) becomes a short line in the thread instead, like any entry.
"""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.blocks.thread import Quote, delivery_reaction, sender_label
from bot.emoji_names import slack_emoji_name
from core.actions.locks import lock_message
from core.db import Database
from core.models import Direction, Message

from .slack_client import SlackGateway, SlackRefused

log = logging.getLogger(__name__)

REACTION = "reaction"  # message.kind
REACTED = "reacted"  # slack_status_shown of a lead's reaction shown on the entry it reacts to


def is_lead_reaction(message: Message) -> bool:
    return message.kind == REACTION and message.direction == Direction.INBOUND


def referenced(session: Session, message: Message) -> Message | None:
    """The message of this conversation that `message` replies or reacts to, if we have it."""
    if message.reply_to_provider_id is None:
        return None
    return session.scalar(
        select(Message).where(
            Message.conversation_id == message.conversation_id,
            Message.provider_message_id == message.reply_to_provider_id,
        )
    )


def quote_for(session: Session, message: Message, lead_name: str) -> Quote | None:
    """The line an entry shows about the message it answers; None when it answers nothing."""
    if message.reply_to_provider_id is None:
        return None
    target = referenced(session, message)
    if target is None:
        return Quote(reaction=message.kind == REACTION)
    return Quote(sender_label(target, lead_name), target.text, reaction=message.kind == REACTION)


class LeadReactions:
    def __init__(self, db: Database, slack: SlackGateway) -> None:
        self.db = db
        self.slack = slack

    def show(self, message: Message) -> bool:
        """Put the lead's reaction on the entry it reacts to; False when it needs a line instead."""
        with self.db.sessions() as session:
            target = referenced(session, message)
            previous = session.scalar(
                select(Message.text)
                .where(
                    Message.conversation_id == message.conversation_id,
                    Message.kind == REACTION,
                    Message.direction == Direction.INBOUND,
                    Message.reply_to_provider_id == message.reply_to_provider_id,
                    Message.slack_status_shown == REACTED,
                    Message.id < message.id,
                )
                .order_by(Message.id.desc())
                .limit(1)
            )
        if target is None or target.slack_ts is None or target.slack_channel is None:
            return False
        name = slack_emoji_name(message.text) if message.text else None
        if message.text and name is None:
            return False  # not an emoji we can name: the line says which
        old = slack_emoji_name(previous) if previous else None
        # The app adds the delivery marks too (👀 read…): a lead's 👀 taken back must not take "read" away.
        if old is not None and old != name and old != delivery_reaction(target.delivery_status):
            self.slack.unreact(target.slack_channel, target.slack_ts, old)
        if name is not None:
            try:
                self.slack.react(target.slack_channel, target.slack_ts, name)
            except SlackRefused as refused:  # invalid_name: Slack has no emoji by that name
                log.info("reaction %s shown as a line: Slack refused %r (%s)", message.id, name, refused)
                return False
        self.db.run(partial(_store_reacted, message_id=message.id))
        return True


def _store_reacted(session: Session, message_id: int) -> None:
    lock_message(session, message_id).slack_status_shown = REACTED
