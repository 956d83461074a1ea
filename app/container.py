"""The composition root: builds everything from settings and plugs bot/, channels/ (and later ai/) into core.

This is the one package that knows every room; core knows none of them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from app.worker import EmbeddedWorker
from bot.mirror import Mirror
from bot.notify import AssigneeNotifier
from bot.slack_client import SlackGateway
from core.actions.inbound import do_receive, do_record_delivery
from core.coordination import Coordinator, LocalCoordinator, RedisCoordinator
from core.db import Database
from core.delivery import Deliverer
from core.messages import ChannelSender
from core.metrics import INBOUND
from core.models import Channel
from core.outbox import Handler, JobKind, OutboxRunner
from core.settings import Settings, load_settings

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    db: Database
    coordinator: Coordinator
    runner: OutboxRunner
    ai_available: bool = False  # no agent runs yet: every conversation is handled by people
    worker: EmbeddedWorker | None = None  # the in-process worker, in embedded mode

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.db.dispose()


def build_container(settings: Settings | None = None) -> Container:
    settings = settings or load_settings()
    settings.require_slack()
    db = Database(settings.database_url)
    coordinator: Coordinator = LocalCoordinator()
    if settings.REDIS_URL is not None:
        coordinator = RedisCoordinator(settings.REDIS_URL)
    slack = SlackGateway(
        token=_secret(settings.SLACK_BOT_TOKEN),
        base_url=settings.SLACK_API_URL,
        coordinator=coordinator,
        posts_per_second=settings.THREADLINE_SLACK_POSTS_PER_SECOND,
        burst=settings.THREADLINE_SLACK_POST_BURST,
    )
    handlers: dict[JobKind, Handler] = {
        JobKind.MIRROR: Mirror(db, slack, coordinator, default_channel=settings.SLACK_CHANNEL or ""),
        JobKind.DELIVER: Deliverer(db, _senders(settings)),
        JobKind.NOTIFY_ASSIGNEE: AssigneeNotifier(db, slack),
    }
    runner = OutboxRunner(db, handlers)
    container = Container(settings=settings, db=db, coordinator=coordinator, runner=runner)
    if settings.embedded:
        container.worker = EmbeddedWorker(runner, sweep_seconds=settings.THREADLINE_SWEEP_SECONDS)
        db.dispatch = container.worker.dispatch
    else:
        from app.celery_app import CeleryDispatcher, configure

        configure(settings.REDIS_URL or "", sweep_seconds=settings.THREADLINE_SWEEP_SECONDS)
        db.dispatch = CeleryDispatcher()
    return container


def _senders(settings: Settings) -> dict[Channel, ChannelSender]:
    senders: dict[Channel, ChannelSender] = {}
    if settings.whatsapp_enabled:
        from channels.whatsapp import WhatsAppSender

        senders[Channel.WHATSAPP] = WhatsAppSender(
            api_url=settings.WHATSAPP_API_URL,
            phone_number_id=settings.WHATSAPP_PHONE_NUMBER_ID or "",
            access_token=_secret(settings.WHATSAPP_ACCESS_TOKEN),
        )
    return senders


class InboundSink:
    """Stores what a webhook delivered: one transaction per message, before the provider gets its 200."""

    def __init__(self, db: Database, *, ai_available: bool) -> None:
        self.db = db
        self.ai_available = ai_available

    async def __call__(self, parsed: Any) -> None:
        await asyncio.to_thread(self._store, parsed)

    def _store(self, parsed: Any) -> None:
        for inbound in parsed.messages:
            result = self.db.run(partial(do_receive, inbound=inbound, ai_available=self.ai_available))
            INBOUND.labels(inbound.channel.value, "duplicate" if result.duplicate else "stored").inc()
        for update in parsed.updates:
            self.db.run(partial(do_record_delivery, update=update))


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""
