"""Log set-up: one line per event (text, or JSON with THREADLINE_LOG_FORMAT=json), quiet libraries,
nothing secret.

Every line goes through the root logger's handler, whoever wrote it (Threadline, slack_sdk, httpx,
Celery…), and that handler carries two filters:
- `ContextFilter` copies what the work in hand is about (core.log_context: job, conversation, message)
  onto the record, for the formatter;
- `RedactingFilter` replaces every configured secret — tokens, signing secrets, API keys, the passwords
  inside DATABASE_URL, REDIS_URL and the mail servers' URLs — in the message, its traceback and its
  stack, at every level: at DEBUG the libraries speak too, and some of them print request bodies and
  connection URLs. Secrets shorter than MIN_SECRET characters cannot be told from ordinary text and are
  left alone.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from core.log_context import current_log_context
from core.settings import Section, Settings, env_files

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MIN_SECRET = 4
# Libraries speak up only when something is wrong (below DEBUG); Threadline says what starting did.
QUIET = (
    "slack_bolt",
    "slack_sdk",
    "alembic",
    "celery",
    "kombu",
    "httpx",
    "httpcore",
    "httpx2",  # the openai package's own copy of httpx
    "httpcore2",
    "openai",
    "aiohttp.access",
    "imapclient",
)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.THREADLINE_LOG_FORMAT == "json" else TextFormatter())
    logging.basicConfig(level=settings.THREADLINE_LOG_LEVEL, handlers=[handler])
    root = logging.getLogger()
    redactor = RedactingFilter(configured_secrets())
    for each in root.handlers:  # ours, or whatever was there first (a test runner's capture)
        for old in [f for f in each.filters if isinstance(f, ContextFilter | RedactingFilter)]:
            each.removeFilter(old)
        each.addFilter(ContextFilter())
        each.addFilter(redactor)
    logging.captureWarnings(True)  # a library's warning is a log line too, and passes the same filters
    # At DEBUG everything speaks (that is what DEBUG is for); otherwise libraries only when it matters.
    quiet = logging.DEBUG if root.level <= logging.DEBUG else max(logging.WARNING, root.level)
    for name in QUIET:
        logging.getLogger(name).setLevel(quiet)
    # Bolt reads SLACK_BOT_TOKEN from the environment itself and warns that the client we give it wins:
    # that is exactly what we want (the client carries SLACK_API_URL), so the warning says nothing.
    logging.getLogger("slack_bolt.AsyncApp").addFilter(
        lambda record: "will be unused" not in record.getMessage()
    )
    beat = logging.getLogger("celery.beat")
    if not any(isinstance(f, BrokerAwayFilter) for f in beat.filters):
        beat.addFilter(BrokerAwayFilter())


def leave_celery_logging_to_us() -> None:
    """A Celery worker keeps this set-up: without a `setup_logging` receiver Celery sets the root's
    level to its own --loglevel and sends print() output to a logger of its own."""
    from celery.signals import setup_logging

    setup_logging.connect(_keep_ours, weak=False)


def _keep_ours(**_kwargs: object) -> None:
    pass


# --- secrets -------------------------------------------------------------------------------------------


def configured_secrets() -> dict[str, str]:
    """Every secret value set for any settings section (value → the setting's name), read from the same
    sources the sections read, but before any validation: a setting that does not validate is still
    a secret that must not be printed."""
    import ai.settings  # noqa: F401  (the sections: imported so Section knows its subclasses)
    import app.channels  # noqa: F401

    sources: list[Mapping[str, str | None]] = [_read_env_file(path) for path in env_files()]
    sources.append(os.environ)
    found: dict[str, str] = {}
    for section in _sections(Section):
        for name, field in section.model_fields.items():
            for source in sources:
                value = source.get(name)
                if not value:
                    continue
                if "SecretStr" in str(field.annotation):
                    found[value] = name
                for password in _url_passwords(value):
                    found[password] = f"{name} password"
    return {value: name for value, name in found.items() if len(value) >= MIN_SECRET}


def _sections(base: type[Section]) -> Iterator[type[Section]]:
    for sub in base.__subclasses__():
        yield sub
        yield from _sections(sub)


def _read_env_file(path: os.PathLike[str]) -> dict[str, str | None]:
    from dotenv import dotenv_values

    return dict(dotenv_values(path))


def _url_passwords(value: str) -> list[str]:
    """A URL's password as typed (percent-encoded) and as sent; none for anything else."""
    if "://" not in value or "@" not in value:
        return []
    try:
        password = urlsplit(value.strip()).password
    except ValueError:
        return []
    return [] if not password else sorted({password, unquote(password)})


class RedactingFilter(logging.Filter):
    """Replaces each secret by `[REDACTED:<its setting>]` in the record's message, traceback and stack."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        super().__init__()
        self.secrets = dict(secrets)
        longest_first = sorted(self.secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, longest_first))) if longest_first else None

    def redact(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: f"[REDACTED:{self.secrets[match.group(0)]}]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # logging would print the arguments themselves to stderr: they may hold one
            message = f"(a log message that could not be formatted: {record.msg!r:.200})"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


# --- context and format --------------------------------------------------------------------------------


class BrokerAwayFilter(logging.Filter):
    """Celery beat logs an ERROR with a traceback and its own stack for every sweep it cannot hand to an
    unreachable broker. A Redis outage is a fault Threadline rides out (the work is in the database and
    the sweep catches up once Redis is back), so each is one WARNING line saying so."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and _connection_lost(error):
            record.msg = "could not hand a scheduled task to the broker (%s); it runs again once it is back"
            record.args = (error,)
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _connection_lost(error: BaseException) -> bool:
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    seen: BaseException | None = error
    for _ in range(10):  # the cause chain: SchedulingError <- kombu's error <- redis's <- the socket's
        if seen is None:
            return False
        if isinstance(seen, ConnectionError | TimeoutError | OperationalError | RedisConnectionError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class ContextFilter(logging.Filter):
    """What the work in hand is about (core.log_context), onto the record as `context`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.context = dict(current_log_context())
        return True


def context_of(record: logging.LogRecord) -> Mapping[str, object]:
    context = getattr(record, "context", None)
    return context if isinstance(context, Mapping) else {}


class TextFormatter(logging.Formatter):
    """`2026-12-03 18:00:00,123 INFO core.delivery: message 7 sent [job=deliver conversation_id=3]`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = context_of(record)
        return f"{line} [{_pairs(context.items())}]" if context else line


def _pairs(items: Iterable[tuple[str, object]]) -> str:
    return " ".join(f"{key}={value}" for key, value in items)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the context's fields, and the traceback."""

    BASE = ("ts", "level", "logger", "message")

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in context_of(record).items():
            if key not in self.BASE:
                document[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, ensure_ascii=False, default=str)
