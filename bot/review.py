"""The `review_knowledge` outbox handler: posts a teammate's correction of an AI answer in that
conversation's thread, with Approve and Reject, for a teammate to review (bot/handlers/ai.py).

It reads the entry afresh when it runs: one reviewed (or replaced) meanwhile is not posted. A retry
whose earlier post landed but whose answer was lost finds that post by its metadata instead of posting
twice.
"""

from __future__ import annotations

from typing import Any

from bot.blocks.ai import build_knowledge_review
from core.actions.knowledge import entry_conversation
from core.db import Database
from core.models import KnowledgeEntry, KnowledgeStatus, Member
from core.outbox import Job

from .slack_client import SlackGateway

REVIEW_EVENT = "threadline_knowledge_review"


class KnowledgeReview:
    def __init__(self, db: Database, slack: SlackGateway) -> None:
        self.db = db
        self.slack = slack

    def __call__(self, job: Job) -> None:
        entry_id = job.payload.get("entry_id")
        assert isinstance(entry_id, int), "review_knowledge jobs name their entry"
        with self.db.sessions() as session:
            entry = session.get(KnowledgeEntry, entry_id)
            if entry is None or entry.status != KnowledgeStatus.PENDING:
                return  # reviewed or replaced since: nothing left to ask
            conversation = entry_conversation(session, entry)
            author = session.get(Member, entry.created_by_id) if entry.created_by_id is not None else None
            text, blocks = build_knowledge_review(entry, author=author.slack_user_id if author else None)
        if conversation is None or not (conversation.slack_channel and conversation.slack_thread_ts):
            return  # no thread to ask in (an entry not from an AI answer)
        channel, thread_ts = conversation.slack_channel, conversation.slack_thread_ts
        if job.attempts > 1 and self.slack.find_posted(
            channel, event_type=REVIEW_EVENT, key="entry_id", value=entry_id, thread_ts=thread_ts
        ):
            return  # posted by an attempt whose answer was lost
        metadata: dict[str, Any] = {"event_type": REVIEW_EVENT, "event_payload": {"entry_id": entry_id}}
        self.slack.pace(channel, urgent=False)
        self.slack.post(channel, text=text, blocks=blocks, thread_ts=thread_ts, metadata=metadata, paced=True)
