"""The AI's turn (JobKind.AI_REPLY), as the outbox runs it:

1. read the turn's context in one short read (core.queries.ai_turn); a turn no longer the AI's
   (a teammate took over, the lead wrote again) is recorded as skipped and costs no model call;
2. the rules that need no model (a person asked for, frustration, high value, pricing, too many
   turns, business hours) — any of them hands off at once;
3. retrieve the few knowledge entries for this turn and ask the model (no transaction open);
4. the rules on the model's decision; any model failure is a hand-off with its reason;
5. one transaction (core.actions.ai.do_ai_turn) that compare-and-sets and replies, hands off or skips.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from ai.context import build_messages
from ai.knowledge import TOP, Entry, from_database, load_folder, relevant
from ai.model import ModelClient, ModelFailure, elapsed_ms
from ai.rules import Rules, load_rules
from ai.settings import AISettings
from core.actions.ai import AITurn, do_ai_skip, do_ai_turn
from core.db import Database
from core.models import Author, utcnow
from core.outbox import Job
from core.queries.ai_turn import TurnContext, read_turn_context
from core.settings import secret

log = logging.getLogger(__name__)

QUERY_TURNS = 2  # the lead's last messages that retrieval looks for knowledge with


class Agent:
    """The outbox handler for `ai_reply`."""

    def __init__(self, db: Database, settings: AISettings, *, now: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.now = now
        self.rules: Rules = load_rules(settings.THREADLINE_AI_RULES)
        self.folder = settings.THREADLINE_KNOWLEDGE_DIR
        self.history_tokens = settings.THREADLINE_AI_HISTORY_TOKENS
        self.model = ModelClient(
            api_key=secret(settings.OPENAI_API_KEY),
            base_url=settings.OPENAI_BASE_URL,
            model=settings.THREADLINE_AI_MODEL,
            timeout=settings.THREADLINE_AI_TIMEOUT_SECONDS,
            retries=settings.THREADLINE_AI_RETRIES,
            embedding_model=settings.THREADLINE_AI_EMBEDDING_MODEL,
        )

    def __call__(self, job: Job) -> None:
        assert job.conversation_id is not None and job.message_id is not None
        conversation_id, message_id = job.conversation_id, job.message_id
        with self.db.sessions() as session:
            context = read_turn_context(session, conversation_id, message_id)
        if not context.current:
            self.db.run(lambda s: do_ai_skip(s, conversation_id, message_id, model=self.model.model))
            log.info(
                "conversation %s: AI turn for message %s skipped (no longer its turn)",
                conversation_id,
                message_id,
            )
            return
        try:
            turn = asyncio.run(self.think(context))
        except Exception as exc:  # our own bug (a knowledge file we cannot list…): hand off, never hang
            log.error("conversation %s: the AI turn failed: %s: %s", conversation_id, type(exc).__name__, exc)
            turn = AITurn(model=self.model.model, reasons=[f"the agent failed ({type(exc).__name__})"])
        result = self.db.run(lambda s: do_ai_turn(s, conversation_id, message_id, turn))
        log.info(
            "conversation %s: AI turn for message %s %s in %d ms%s",
            conversation_id,
            message_id,
            result.outcome.value,
            turn.latency_ms,
            f" ({'; '.join(turn.reasons)})" if turn.reasons else "",
        )

    async def think(self, context: TurnContext) -> AITurn:
        """The turn's outcome before it is committed: a reply, or the reasons to hand off."""
        started = time.monotonic()
        lead_text = _newest_lead_text(context)
        reasons = self.rules.before_model(context, lead_text, self.now())
        if reasons:
            return AITurn(model=self.model.model, reasons=reasons, latency_ms=elapsed_ms(started))
        entries = await self.knowledge_for(context)
        messages = build_messages(
            channel=context.channel,
            lead=context.lead,
            history=context.history,
            knowledge=entries,
            history_tokens=self.history_tokens,
        )
        used = [entry.stored() for entry in entries]
        try:
            answer = await self.model.decide(messages)
        except ModelFailure as failure:
            log.warning("conversation %s: the model failed: %s", context.conversation_id, failure.reason)
            return AITurn(
                model=self.model.model,
                reasons=[failure.reason],
                knowledge=used,
                latency_ms=elapsed_ms(started),
                prompt_tokens=failure.prompt_tokens,
                completion_tokens=failure.completion_tokens,
            )
        decision = answer.decision
        reasons = self.rules.after_model(decision, entries)
        return AITurn(
            model=self.model.model,
            reply=None if reasons else decision.reply,
            intent=decision.intent,
            confidence=decision.confidence,
            reasoning=decision.reasoning,
            reasons=reasons,
            knowledge=used,
            latency_ms=elapsed_ms(started),
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
        )

    async def knowledge_for(self, context: TurnContext) -> list[Entry]:
        """The few entries relevant to the lead's last messages: by meaning when the server offers
        embeddings, else (or on any error there) by BM25."""
        entries = load_folder(self.folder) + from_database(context.knowledge)
        lead_turns = [turn.text for turn in context.history if turn.author == Author.LEAD][-QUERY_TURNS:]
        query = "\n".join(lead_turns)
        by_meaning = await self.model.rerank(query, entries, TOP)
        return by_meaning if by_meaning is not None else relevant(query, entries)


def _newest_lead_text(context: TurnContext) -> str:
    for turn in reversed(context.history):
        if turn.message_id == context.answered_message_id:
            return turn.text
    return ""
