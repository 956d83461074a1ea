"""`threadline` — run, web, worker, migrate, check.

Operators read this program's output, so every expected failure is one clear line and exit code 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import SettingsError, ThreadlineError
from core.settings import Settings, load_settings

if TYPE_CHECKING:
    from app.container import Container

log = logging.getLogger("threadline")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="threadline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="migrate, then serve HTTP and run the worker (the one-command start)")
    commands.add_parser("web", help="serve HTTP only (expects `threadline migrate` to have run)")
    commands.add_parser("worker", help="run a Celery worker with the outbox sweep (needs REDIS_URL)")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    commands.add_parser("check", help="print what is configured, reachable and missing")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        _configure_logging(settings)
        return {
            "run": _run,
            "web": _web,
            "worker": _worker,
            "migrate": _migrate,
            "check": _check,
        }[args.command](settings)
    except ThreadlineError as exc:
        print(f"threadline: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.THREADLINE_LOG_LEVEL.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("slack_bolt").setLevel(logging.WARNING)


def _migrate(settings: Settings) -> int:
    from core import migrate
    from core.db import make_engine

    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        log.info("database is at schema %s", migrate.current_revision(engine))
    finally:
        engine.dispose()
    return 0


def _run(settings: Settings) -> int:
    settings.require_slack()
    _migrate(settings)
    worker_process = None
    if not settings.embedded:
        # Celery needs its own process; `run` supervises it so one command still starts everything.
        worker_process = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"])
    try:
        return _serve(settings, with_embedded_worker=settings.embedded)
    finally:
        if worker_process is not None:
            worker_process.terminate()
            try:
                worker_process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker_process.kill()


def _web(settings: Settings) -> int:
    settings.require_slack()
    _require_current_schema(settings)
    return _serve(settings, with_embedded_worker=settings.embedded)


def _require_current_schema(settings: Settings) -> None:
    from core import migrate
    from core.db import make_engine

    engine = make_engine(settings.database_url)
    try:
        if not migrate.is_current(engine):
            raise SettingsError("the database schema is not current: run `threadline migrate` first.")
    finally:
        engine.dispose()


def _serve(settings: Settings, *, with_embedded_worker: bool) -> int:
    from app.container import build_container

    container = build_container(settings)
    if not container.ai_available:
        log.info("AI agent off: not part of this version yet, so every conversation is handled by people.")
    if with_embedded_worker and container.worker is not None:
        container.worker.start()
    try:
        asyncio.run(_serve_http(settings, container))
    finally:
        container.close()
    return 0


async def _serve_http(settings: Settings, container: Container) -> None:
    from aiohttp import web

    from app.web import build_web, mark_ready

    app, bolt = build_web(container)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.HOST, settings.PORT)
    await site.start()
    socket_mode = None
    if settings.SLACK_APP_TOKEN is not None:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        socket_mode = AsyncSocketModeHandler(bolt, settings.SLACK_APP_TOKEN.get_secret_value())
        await socket_mode.connect_async()
    mark_ready(app)
    mode = "Socket Mode" if socket_mode else "HTTP (POST /slack/events)"
    runtime = "embedded worker, SQLite" if settings.embedded else "Celery + Redis"
    if settings.embedded and not settings.database_url.startswith("sqlite"):
        runtime = "embedded worker, PostgreSQL"
    log.info(
        "Threadline listening on http://%s:%s — Slack via %s; %s", settings.HOST, settings.PORT, mode, runtime
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    if socket_mode is not None:
        await socket_mode.close_async()
    await runner.cleanup()


def _worker(settings: Settings) -> int:
    if settings.REDIS_URL is None:
        raise SettingsError(
            "REDIS_URL is not set: `threadline worker` runs Celery workers for the distributed mode; "
            "in the embedded mode `threadline run` already includes the worker."
        )
    settings.require_slack()
    _require_current_schema(settings)
    import app.tasks  # noqa: F401  (registers the tasks this worker runs)
    from app.celery_app import celery_app, configure

    configure(settings.REDIS_URL, sweep_seconds=settings.THREADLINE_SWEEP_SECONDS)
    schedule = Path(tempfile.gettempdir()) / f"threadline-beat-{os.getpid()}"
    celery_app.worker_main(
        [
            "worker",
            "--beat",
            f"--schedule={schedule}",
            "--pool=threads",
            "--concurrency=4",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def _check(settings: Settings) -> int:
    from app.checks import run_checks

    return run_checks(settings)


if __name__ == "__main__":
    sys.exit(main())
