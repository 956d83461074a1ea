"""The composition root: builds everything from settings and plugs bot/, channels/ (and later ai/) into core.

This is the one package that knows every room; core knows none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from ai.agent import Agent
from ai.settings import AISettings
from app.channels import PLUGINS
from app.worker import EmbeddedWorker
from bot.context import BotContext
from bot.inbound import SOURCE as SLACK_EVENTS
from bot.inbound import SlackEvents
from bot.mirror import Mirror
from bot.notify import AIHandoffNotice, AssigneeNotifier, ChannelHealthNotice, MessageNotifier, SlaReminder
from bot.review import KnowledgeReview
from bot.slack_client import MeteredAsyncWebClient, SlackGateway
from core import inbox
from core.actions.sla import do_queue_sla_reminders
from core.coordination import Coordinator, LocalCoordinator, RedisCoordinator
from core.db import Database
from core.delivery import Deliverer
from core.errors import PermanentDelivery, SettingsError
from core.inbox import InboxRunner
from core.models import utcnow
from core.outbox import Handler, Job, JobKind, OutboxRunner
from core.ports import ChannelAdapter, ChannelOff, ChannelPlugin, FetchedFile, OffersTemplates, Template
from core.settings import Settings, load_settings, secret

log = logging.getLogger(__name__)

AI_OFF = "AI agent off: OPENAI_API_KEY is not set, so every conversation is handled by people"


@dataclass
class Channels:
    """The lead channels that are on (by name), and why the others are off."""

    on: dict[str, ChannelAdapter] = field(default_factory=dict)
    off: list[ChannelOff] = field(default_factory=list)

    def fetch_file(self, channel: str, ref: Mapping[str, str]) -> FetchedFile:
        """A lead's file, from the adapter of the channel it came through (for the mirror's upload)."""
        adapter = self.on.get(channel)
        if adapter is None:
            raise PermanentDelivery(f"the {channel} channel is not configured on this server")
        return adapter.fetch_file(ref)

    def templates(self) -> dict[str, tuple[Template, ...]]:
        """By channel: the templates a rep is offered once that channel's reply window is closed."""
        return {
            name: tuple(adapter.templates())
            for name, adapter in self.on.items()
            if isinstance(adapter, OffersTemplates)
        }

    def require_complete(self) -> None:
        """A half-configured channel is almost always a mistake: stop with one line, not run without it."""
        broken = [f"{off.name} is {off.reason}" for off in self.off if off.misconfigured]
        if broken:
            raise SettingsError("; ".join(broken) + " (set the rest, or unset all of its settings)")


def load_channels(plugins: tuple[ChannelPlugin, ...] = PLUGINS) -> Channels:
    channels = Channels()
    for plugin in plugins:
        loaded = plugin.load()
        if isinstance(loaded, ChannelOff):
            channels.off.append(loaded)
        else:
            channels.on[plugin.name] = loaded
    return channels


@dataclass
class Container:
    settings: Settings
    db: Database
    coordinator: Coordinator
    runner: OutboxRunner
    channels: Channels
    inbox: InboxRunner
    bot: BotContext  # what the Slack handlers use, in the web process and (for stored events) workers
    inbox_ready: Callable[[], None] = lambda: None  # a delivery was stored: wake a runner
    ai_available: bool = False  # an agent runs (OPENAI_API_KEY is set): Resume AI means something
    worker: EmbeddedWorker | None = None  # the in-process worker, in embedded mode

    def accept(self, source: str, body: bytes, key: str | None = None) -> None:
        """Keep one verified delivery (before the provider hears 200), then wake the inbox runner."""
        if inbox.store(self.db, source, body, key) is not None:
            self.inbox_ready()

    def remind_sla(self) -> int:
        """Queue a reminder for each lead waiting longer than THREADLINE_SLA_HOURS (run by the sweeps)."""
        hours = self.settings.THREADLINE_SLA_HOURS
        return self.db.run(lambda session: do_queue_sla_reminders(session, now=utcnow(), hours=hours))

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.db.dispose()


def _no_agent(job: Job) -> None:
    """No agent runs on this server: an AI turn queued earlier has nothing to do."""
    log.info("outbox %s: an AI turn with no agent configured; nothing to do", job.id)


def load_agent(db: Database) -> Handler | None:
    """The AI agent, when OPENAI_API_KEY is set; None: AI off, every conversation manual."""
    ai_settings = AISettings.load()
    return Agent(db, ai_settings) if ai_settings.on else None


def build_container(settings: Settings | None = None, channels: Channels | None = None) -> Container:
    settings = settings or load_settings()
    settings.require_slack()
    channels = channels or load_channels()
    channels.require_complete()
    routes = settings.routes({plugin.name for plugin in PLUGINS})
    db = Database(settings.database_url)
    agent = load_agent(db)
    ai_available = agent is not None
    coordinator: Coordinator = LocalCoordinator()
    if settings.REDIS_URL is not None:
        coordinator = RedisCoordinator(settings.REDIS_URL)
    slack = SlackGateway(
        token=secret(settings.SLACK_BOT_TOKEN),
        base_url=settings.SLACK_API_URL,
        coordinator=coordinator,
        posts_per_second=settings.THREADLINE_SLACK_POSTS_PER_SECOND,
        burst=settings.THREADLINE_SLACK_POST_BURST,
    )
    handlers: dict[JobKind, Handler] = {
        JobKind.MIRROR: Mirror(
            db,
            slack,
            routes=routes,
            ai_available=ai_available,
            fetch_file=channels.fetch_file,
            templates=channels.templates(),
        ),
        JobKind.DELIVER: Deliverer(db, channels.on, slack_files=slack.download),
        JobKind.NOTIFY_ASSIGNEE: AssigneeNotifier(db, slack),
        JobKind.NOTIFY_MESSAGE: MessageNotifier(db, slack),
        JobKind.REMIND_SLA: SlaReminder(db, slack),
        JobKind.CHANNEL_HEALTH: ChannelHealthNotice(slack, routes),
        JobKind.AI_REPLY: agent or _no_agent,
        JobKind.AI_HANDOFF: AIHandoffNotice(db, slack),
        JobKind.REVIEW_KNOWLEDGE: KnowledgeReview(db, slack),
    }

    def keep(source: str, body: bytes, key: str | None) -> None:
        container.accept(source, body, key)  # bound below; called only once everything is built

    bot = BotContext(
        db=db,
        ai_available=ai_available,
        csat=settings.THREADLINE_CSAT,
        templates=channels.templates(),
        client=MeteredAsyncWebClient(token=secret(settings.SLACK_BOT_TOKEN), base_url=settings.SLACK_API_URL),
        keep=keep,
    )
    container = Container(
        settings=settings,
        ai_available=ai_available,
        bot=bot,
        db=db,
        coordinator=coordinator,
        runner=OutboxRunner(
            db,
            handlers,
            lease=timedelta(seconds=settings.THREADLINE_LEASE_SECONDS),
            retry_cap=timedelta(seconds=settings.THREADLINE_RETRY_CAP_SECONDS),
        ),
        channels=channels,
        inbox=InboxRunner(
            db,
            {name: adapter.parse for name, adapter in channels.on.items()},
            handlers={SLACK_EVENTS: SlackEvents(bot)},
            ai_available=ai_available,
            # A batch claimed by a worker that died is taken again after twice an outbox lease.
            lease=timedelta(seconds=2 * settings.THREADLINE_LEASE_SECONDS),
        ),
    )
    if settings.embedded:
        worker = EmbeddedWorker(
            container.runner,
            container.inbox,
            sweep_seconds=settings.THREADLINE_SWEEP_SECONDS,
            sweeps=[container.remind_sla],
        )
        container.worker, db.dispatch, container.inbox_ready = worker, worker.dispatch, worker.inbox_ready
    else:
        from app.celery_app import CeleryDispatcher, configure

        configure(settings.REDIS_URL or "", sweep_seconds=settings.THREADLINE_SWEEP_SECONDS)
        dispatcher = CeleryDispatcher()
        db.dispatch, container.inbox_ready = dispatcher, dispatcher.inbox_ready
    return container
