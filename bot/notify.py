"""The `notify_assignee` outbox handler: a DM to the teammate a conversation was assigned to."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.blocks.notifications import build_assignment_dm
from core.db import Database
from core.models import Conversation, Member
from core.outbox import Job

from .slack_client import SlackGateway


class AssigneeNotifier:
    def __init__(self, db: Database, slack: SlackGateway) -> None:
        self.db = db
        self.slack = slack

    def __call__(self, job: Job) -> None:
        member_id = job.payload.get("member_id")
        assert job.conversation_id is not None and isinstance(member_id, int)

        def load(session: Session) -> tuple[Conversation, Member] | None:
            conversation = session.get_one(Conversation, job.conversation_id)
            member = session.get(Member, member_id)
            if member is None or conversation.assignee_id != member_id or not member.notify_on_assign:
                return None  # reassigned since, or they asked not to be told
            return conversation, member

        with self.db.sessions() as session:
            found = load(session)
        if found is None:
            return
        conversation, member = found
        permalink = None
        if conversation.slack_channel and conversation.slack_thread_ts:
            permalink = self.slack.permalink(conversation.slack_channel, conversation.slack_thread_ts)
        text, blocks = build_assignment_dm(conversation, permalink)
        # Posting to a user id opens (or reuses) the app's DM with them.
        self.slack.post(member.slack_user_id, text=text, blocks=blocks)
