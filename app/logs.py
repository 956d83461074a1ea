"""Log set-up: one line per event, quiet libraries, nothing secret."""

from __future__ import annotations

import logging

from core.settings import Settings


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.THREADLINE_LOG_LEVEL,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Libraries speak up only when something is wrong; Threadline says what starting did.
    for name in ("slack_bolt", "slack_sdk", "alembic", "celery.beat", "httpx", "httpcore", "aiohttp.access"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    # Bolt reads SLACK_BOT_TOKEN from the environment itself and warns that the client we give it wins:
    # that is exactly what we want (the client carries SLACK_API_URL), so the warning says nothing.
    logging.getLogger("slack_bolt.AsyncApp").addFilter(
        lambda record: "will be unused" not in record.getMessage()
    )
