"""Telling teammates: the outbox handlers for `notify_assignee` and `notify_message` (a DM),
`remind_sla` (a reminder in the conversation's thread) and `channel_health` (a lead channel broke).

Each reads the state afresh when it runs, so a conversation reassigned, answered or closed since the
work was queued — or a teammate who turned these DMs off meanwhile — gets nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.blocks.ai import build_handoff_blocks
from bot.blocks.notifications import (
    build_ai_handoff,
    build_assignment_dm,
    build_channel_health,
    build_message_dm,
    build_sla_reminder,
)
from core.db import Database
from core.errors import Deferred
from core.models import AIDecision, Conversation, Member, Message, Status, utcnow
from core.outbox import Job
from core.routing import Routes

from .slack_client import SlackGateway

SLA_EVENT = "threadline_sla_reminder"  # metadata on a reminder, so a retried post finds the first one
HANDOFF_EVENT = "threadline_ai_handoff"  # metadata on the AI's hand-off notice, for the same reason


class _Notifier:
    def __init__(self, db: Database, slack: SlackGateway) -> None:
        self.db = db
        self.slack = slack

    def _permalink(self, conversation: Conversation) -> str | None:
        if conversation.slack_channel and conversation.slack_thread_ts:
            return self.slack.permalink(conversation.slack_channel, conversation.slack_thread_ts)
        return None

    def _assignee(self, session: Session, job: Job) -> tuple[Conversation, Member] | None:
        """The conversation and the member the job is for, if it is still theirs."""
        member_id = job.payload.get("member_id")
        assert job.conversation_id is not None and isinstance(member_id, int)
        conversation = session.get_one(Conversation, job.conversation_id)
        member = session.get(Member, member_id)
        if member is None or conversation.assignee_id != member_id:
            return None  # reassigned since
        return conversation, member


class AssigneeNotifier(_Notifier):
    """A DM to the teammate a conversation was assigned to."""

    def __call__(self, job: Job) -> None:
        with self.db.sessions() as session:
            found = self._assignee(session, job)
        if found is None or not found[1].notify_on_assign:
            return
        conversation, member = found
        text, blocks = build_assignment_dm(conversation, self._permalink(conversation))
        # Posting to a user id opens (or reuses) the app's DM with them.
        self.slack.post(member.slack_user_id, text=text, blocks=blocks)


class MessageNotifier(_Notifier):
    """A DM to the assignee that their lead wrote: one per batch of messages, the latest quoted."""

    def __call__(self, job: Job) -> None:
        with self.db.sessions() as session:
            found = self._assignee(session, job)
            latest = session.get(Message, job.message_id) if job.message_id is not None else None
        if found is None or latest is None or not found[1].notify_on_message:
            return
        conversation, member = found
        count = job.payload.get("count")
        said = latest.text if latest.text.strip() else f"({latest.kind})"
        text, blocks = build_message_dm(
            conversation, said, count if isinstance(count, int) else 1, self._permalink(conversation)
        )
        self.slack.post(member.slack_user_id, text=text, blocks=blocks)


class SlaReminder(_Notifier):
    """The reminder in the thread of a conversation whose lead has waited too long."""

    def __call__(self, job: Job) -> None:
        assert job.conversation_id is not None
        waiting_since = datetime.fromisoformat(str(job.payload.get("waiting_since")))
        with self.db.sessions() as session:
            conversation = session.get_one(Conversation, job.conversation_id)
            assignee = conversation.assignee.slack_user_id if conversation.assignee else None
        channel, thread_ts = conversation.slack_channel, conversation.slack_thread_ts
        if (
            conversation.status == Status.CLOSED
            or conversation.waiting_since != waiting_since  # answered since (or a newer wait)
            or channel is None
            or thread_ts is None
        ):
            return
        wait = round(waiting_since.timestamp() * 1000)
        if job.attempts > 1 and self.slack.find_posted(
            channel, event_type=SLA_EVENT, key="wait", value=wait, thread_ts=thread_ts
        ):
            return  # posted by an attempt whose answer was lost
        metadata: dict[str, Any] = {
            "event_type": SLA_EVENT,
            "event_payload": {"conversation_id": conversation.id, "wait": wait},
        }
        text = build_sla_reminder(conversation, assignee, waiting_since, utcnow())
        self.slack.pace(channel, urgent=False)  # new cards and replies to leads go first
        self.slack.post(channel, text=text, thread_ts=thread_ts, metadata=metadata, paced=True)


class AIHandoffNotice(_Notifier):
    """Says in the thread why the AI handed the conversation over, mentioning the assignee (else
    `@here`). A Slack post only, never a message to the lead."""

    def __call__(self, job: Job) -> None:
        decision_id = job.payload.get("decision_id")
        assert job.conversation_id is not None and isinstance(decision_id, int)
        with self.db.sessions() as session:
            conversation = session.get_one(Conversation, job.conversation_id)
            decision = session.get_one(AIDecision, decision_id)
            assignee = conversation.assignee.slack_user_id if conversation.assignee else None
            reasons = [str(reason) for reason in decision.reasons]
            text = build_ai_handoff(conversation, assignee, reasons)
        channel, thread_ts = conversation.slack_channel, conversation.slack_thread_ts
        if channel is None or thread_ts is None:
            raise Deferred(5, "the conversation's thread is not posted yet")
        if job.attempts > 1 and self.slack.find_posted(
            channel, event_type=HANDOFF_EVENT, key="decision_id", value=decision_id, thread_ts=thread_ts
        ):
            return  # posted by an attempt whose answer was lost
        metadata: dict[str, Any] = {
            "event_type": HANDOFF_EVENT,
            "event_payload": {"conversation_id": conversation.id, "decision_id": decision_id},
        }
        self.slack.pace(channel, urgent=True)
        blocks = build_handoff_blocks(text, decision_id)  # with Why?: the decision behind the hand-off
        self.slack.post(channel, text=text, blocks=blocks, thread_ts=thread_ts, metadata=metadata, paced=True)


class ChannelHealthNotice:
    """Says in the lead channel's Slack channel (its route, else SLACK_CHANNEL) that it broke or
    works again; queued once per change (core.actions.health)."""

    def __init__(self, slack: SlackGateway, routes: Routes) -> None:
        self.slack = slack
        self.routes = routes

    def __call__(self, job: Job) -> None:
        channel, account = str(job.payload.get("channel")), str(job.payload.get("account"))
        reason = job.payload.get("reason")
        text = build_channel_health(
            channel,
            account,
            ok=job.payload.get("ok") is True,
            reason=reason if isinstance(reason, str) else None,
        )
        where = self.routes.channel_for(campaign=None, lead_channel=channel)
        self.slack.pace(where, urgent=True)
        self.slack.post(where, text=text, paced=True)
