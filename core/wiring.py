"""The composition root: the one module in core that plugs in bot/, channels/ (and later ai/).

Everything else in core depends only on core; this is where the faces and adapters meet it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from core.actions import DELIVER, MIRROR, NOTIFY_ASSIGNEE, do_receive, do_record_delivery
from core.coordination import Coordinator, LocalCoordinator, RedisCoordinator
from core.db import Database
from core.delivery import Deliverer
from core.messages import ChannelSender
from core.metrics import INBOUND
from core.models import Channel
from core.outbox import Handler, OutboxRunner
from core.settings import Settings, load_settings
from core.web import Registrar, build_web_app
from core.worker import EmbeddedWorker

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    db: Database
    coordinator: Coordinator
    runner: OutboxRunner
    worker: EmbeddedWorker | None = None  # the in-process worker, in embedded mode

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.db.dispose()


def build_container(settings: Settings | None = None) -> Container:
    from bot.mirror import Mirror
    from bot.notify import AssigneeNotifier
    from bot.slack_client import SlackGateway

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
    handlers: dict[str, Handler] = {
        MIRROR: Mirror(db, slack, coordinator, default_channel=settings.SLACK_CHANNEL or ""),
        DELIVER: Deliverer(db, _senders(settings)),
        NOTIFY_ASSIGNEE: AssigneeNotifier(db, slack),
    }
    runner = OutboxRunner(db, handlers)
    container = Container(settings=settings, db=db, coordinator=coordinator, runner=runner)
    if settings.embedded:
        container.worker = EmbeddedWorker(runner, sweep_seconds=settings.THREADLINE_SWEEP_SECONDS)
        db.dispatch = container.worker.dispatch
    else:
        from core.tasks import CeleryDispatcher, configure

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


def build_web(container: Container) -> tuple[web.Application, Any]:
    """The aiohttp app with every route, and the Bolt app behind /slack/events."""
    from bot.app import build_bolt_app, http_routes
    from bot.context import BotContext

    settings = container.settings
    bolt = build_bolt_app(
        token=_secret(settings.SLACK_BOT_TOKEN),
        signing_secret=_secret(settings.SLACK_SIGNING_SECRET),
        api_url=settings.SLACK_API_URL,
        ctx=BotContext(db=container.db, ai_enabled=settings.ai_enabled),
    )
    registrars: list[Registrar] = [http_routes(bolt), *_webhook_routes(container)]
    return build_web_app(registrars), bolt


def _webhook_routes(container: Container) -> list[Registrar]:
    settings = container.settings
    registrars: list[Registrar] = []
    if settings.whatsapp_enabled:
        from channels import whatsapp

        sink = InboundSink(container.db, ai_enabled=settings.ai_enabled)

        def register_whatsapp(app: web.Application) -> None:
            whatsapp.register_routes(
                app,
                sink=sink,
                app_secret=_secret(settings.WHATSAPP_APP_SECRET),
                verify_token=_secret(settings.WHATSAPP_VERIFY_TOKEN),
            )

        registrars.append(register_whatsapp)
    # A channel that is not configured answers 404 on its webhook: aiohttp's default for an unknown route.
    return registrars


class InboundSink:
    """Stores what a webhook delivered: one transaction per message, before the provider gets its 200."""

    def __init__(self, db: Database, *, ai_enabled: bool) -> None:
        self.db = db
        self.ai_enabled = ai_enabled

    async def __call__(self, parsed: Any) -> None:
        await asyncio.to_thread(self._store, parsed)

    def _store(self, parsed: Any) -> None:
        for inbound in parsed.messages:
            result = self.db.run(partial(do_receive, inbound=inbound, ai_enabled=self.ai_enabled))
            INBOUND.labels(inbound.channel.value, "duplicate" if result.duplicate else "stored").inc()
        for update in parsed.updates:
            self.db.run(partial(do_record_delivery, update=update))


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""
