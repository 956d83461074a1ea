"""The long-running commands: run, web, worker, and migrate."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from app.container import AI_OFF, Container, build_container, load_channels
from core import migrate as migrations
from core.actions.health import do_record_account_health
from core.db import make_engine
from core.errors import SettingsError
from core.ports import Accept, AccountHealth, ReportHealth, ReportsHealth
from core.settings import Settings, env_files

log = logging.getLogger("threadline")


def migrate(settings: Settings, _args: argparse.Namespace | None = None) -> int:
    engine = make_engine(settings.database_url)
    try:
        migrations.upgrade(engine)
        log.info("database is at schema %s", migrations.current_revision(engine))
    finally:
        engine.dispose()
    return 0


def run(settings: Settings, _args: argparse.Namespace | None = None) -> int:
    settings.require_slack()
    load_channels().require_complete()  # before migrating: a settings mistake should change nothing
    migrate(settings)
    if settings.embedded:
        return _serve(settings, with_embedded_worker=True)
    # Celery needs its own process; `run` supervises it so one command still starts everything.
    worker = Supervised([sys.executable, "-m", "app.cli", "worker"], name="worker")
    try:
        return _serve(settings, with_embedded_worker=False)
    finally:
        worker.stop()


class Supervised:
    """A child process kept running: started again (after a pause) whenever it exits on its own."""

    RESTART_PAUSE_SECONDS = 2.0

    def __init__(self, argv: list[str], *, name: str) -> None:
        self.argv, self.name = argv, name
        self._stopping = threading.Event()
        self._guard = threading.Lock()  # a restart and a stop never cross
        self._process = self._start()
        self._watcher = threading.Thread(target=self._watch, name=f"supervise-{name}", daemon=True)
        self._watcher.start()

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv)  # noqa: S603 (our own interpreter and module)

    def _watch(self) -> None:
        while True:
            code = self._process.wait()
            if self._stopping.wait(self.RESTART_PAUSE_SECONDS):
                return
            with self._guard:
                if self._stopping.is_set():
                    return
                log.warning("the %s exited (code %s); starting it again", self.name, code)
                self._process = self._start()

    def stop(self) -> None:
        with self._guard:
            self._stopping.set()
            process = self._process
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def web(settings: Settings, _args: argparse.Namespace | None = None) -> int:
    settings.require_slack()
    _require_current_schema(settings)
    return _serve(settings, with_embedded_worker=settings.embedded)


def worker(settings: Settings, _args: argparse.Namespace | None = None) -> int:
    if settings.REDIS_URL is None:
        raise SettingsError(
            "REDIS_URL is not set: `threadline worker` runs Celery workers for the distributed mode; "
            "in the embedded mode `threadline run` already includes the worker."
        )
    settings.require_slack()
    _require_current_schema(settings)
    import app.tasks  # noqa: F401  (registers the tasks this worker runs)
    from app.celery_app import QUEUES, celery_app, configure
    from app.logs import leave_celery_logging_to_us

    configure(settings.REDIS_URL, sweep_seconds=settings.THREADLINE_SWEEP_SECONDS)
    leave_celery_logging_to_us()  # the worker's lines: same format, level, context and redaction
    _serve_worker_metrics(settings)
    schedule = Path(tempfile.gettempdir()) / f"threadline-beat-{os.getpid()}"
    celery_app.worker_main(
        [
            "--quiet",  # no banner: `threadline run` already said how it is set up
            "worker",
            "--beat",
            f"--schedule={schedule}",
            "--pool=threads",
            f"--queues={QUEUES}",
            "--concurrency=4",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def _serve_worker_metrics(settings: Settings) -> None:
    """The worker's own counters (Slack and provider calls, sends, jobs) on THREADLINE_WORKER_METRICS_PORT:
    a Celery worker serves no HTTP, and what it does happens nowhere else (docs/operations.md)."""
    port = settings.THREADLINE_WORKER_METRICS_PORT
    if port is None:
        log.info("worker metrics not served: set THREADLINE_WORKER_METRICS_PORT to scrape this worker")
        return
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=settings.HOST)
    except OSError as exc:
        raise SettingsError(
            f"the worker cannot serve metrics on {settings.HOST}:{port} ({exc.strerror}): "
            "give each worker on this host its own THREADLINE_WORKER_METRICS_PORT"
        ) from None
    log.info("worker metrics on http://%s:%s/metrics", settings.HOST, port)


def _require_current_schema(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        if not migrations.is_current(engine):
            raise SettingsError("the database schema is not current: run `threadline migrate` first.")
    finally:
        engine.dispose()


def _serve(settings: Settings, *, with_embedded_worker: bool) -> int:
    container = build_container(settings)
    _say_how_it_is_set_up(settings, container)
    if with_embedded_worker and container.worker is not None:
        container.worker.start()
    try:
        asyncio.run(_serve_http(settings, container))
    finally:
        container.close()
    return 0


def _say_how_it_is_set_up(settings: Settings, container: Container) -> None:
    files = ", ".join(str(path) for path in env_files()) or "no .env file"
    log.info("settings from the environment and %s", files)
    channels = ", ".join(sorted(container.channels.on)) or "none"
    log.info("lead channels on: %s", channels)
    for off in container.channels.off:
        log.info("lead channel %s %s", off.name, off.reason)
    if not container.ai_available:
        log.info(AI_OFF)
    else:
        server = settings.OPENAI_BASE_URL or "OpenAI"
        log.info("AI agent on: model %s at %s", settings.THREADLINE_AI_MODEL, server)


async def _serve_http(settings: Settings, container: Container) -> None:
    from aiohttp import web as aiohttp_web
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
    from slack_sdk.errors import SlackApiError, SlackClientError
    from slack_sdk.web.async_client import AsyncWebClient

    from app.web import build_web, mark_ready

    app, bolt = build_web(container)
    runner = aiohttp_web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await aiohttp_web.TCPSite(runner, settings.HOST, settings.PORT).start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(
                f"port {settings.PORT} on {settings.HOST} is already in use (is Threadline already "
                "running?): stop the other program or set PORT to a free port."
            ) from None
        raise SettingsError(f"cannot listen on {settings.HOST}:{settings.PORT}: {exc.strerror}") from None
    socket_mode = None
    if settings.SLACK_APP_TOKEN is not None:
        app_token = settings.SLACK_APP_TOKEN.get_secret_value()
        try:  # the Socket Mode client retries forever on any error: a refused token is said here, once
            await AsyncWebClient(base_url=settings.SLACK_API_URL).apps_connections_open(app_token=app_token)
        except SlackApiError as exc:
            await runner.cleanup()
            raise SettingsError(
                f"Slack refused SLACK_APP_TOKEN ({exc.response.get('error')}): generate an app-level token "
                "with the connections:write scope under Basic Information, or unset it to use HTTP."
            ) from None
        except (OSError, SlackClientError) as exc:
            log.warning("Slack cannot be reached for Socket Mode yet (%s); retrying until it answers", exc)
        socket_mode = AsyncSocketModeHandler(bolt, app_token)
        await socket_mode.connect_async()
    mark_ready(app)
    mode = "Socket Mode" if socket_mode else "HTTP (POST /slack/events)"
    runtime = "embedded worker" if settings.embedded else "Celery + Redis"
    database = "SQLite" if settings.database_url.startswith("sqlite") else "PostgreSQL"
    log.info(
        "Threadline listening on http://%s:%s — Slack via %s; %s, %s",
        settings.HOST,
        settings.PORT,
        mode,
        runtime,
        database,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pollers = []
    for name, adapter in container.channels.on.items():
        for poller in adapter.pollers():
            if isinstance(poller, ReportsHealth):
                poller.report_health_to(_report(container))
            task = asyncio.create_task(
                poller.run(_accept(container, name), stop), name=f"poller:{poller.name}"
            )
            pollers.append(task)
    await stop.wait()
    log.info("shutting down")
    await asyncio.gather(*pollers, return_exceptions=True)
    if socket_mode is not None:
        await socket_mode.close_async()
    await runner.cleanup()


def _report(container: Container) -> ReportHealth:
    async def report(health: AccountHealth) -> None:
        await asyncio.to_thread(container.db.run, lambda session: do_record_account_health(session, health))

    return report


def _accept(container: Container, channel: str) -> Accept:
    async def accept(body: bytes) -> None:
        await asyncio.to_thread(container.accept, channel, body, None)

    return accept
