"""The log set-up (app.logs): secrets redacted from every part of a line, the work's context on each
line, JSON one object per line — tested through a real logger and handler, as the app writes."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from app.logs import (
    QUIET,
    BrokerAwayFilter,
    ContextFilter,
    JsonFormatter,
    RedactingFilter,
    TextFormatter,
    configure_logging,
    configured_secrets,
)
from core.log_context import add_log_context, log_context
from core.settings import Settings

SECRETS = {"xoxb-unit-bot-token-1234": "SLACK_BOT_TOKEN", "p@ss w0rd": "DATABASE_URL password"}


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter(SECRETS))
    logger = logging.getLogger("threadline.test_logs")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    yield logger, stream, handler
    logger.removeHandler(handler)


def test_a_secret_is_redacted_from_the_message_its_arguments_the_traceback_and_the_stack(captured):
    logger, stream, _handler = captured
    logger.debug("headers %s", {"Authorization": "Bearer xoxb-unit-bot-token-1234"})
    try:
        raise RuntimeError("connect to postgresql://app:p@ss w0rd@db/x failed")
    except RuntimeError:
        logger.exception("database away")
    logger.info("stack", stack_info=True, extra={"note": "xoxb-unit-bot-token-1234"})
    written = stream.getvalue()
    assert "xoxb-unit-bot-token-1234" not in written and "p@ss w0rd" not in written
    assert "'Bearer [REDACTED:SLACK_BOT_TOKEN]'" in written
    assert "postgresql://app:[REDACTED:DATABASE_URL password]@db/x" in written
    assert "Traceback" in written and "Stack (most recent call last)" in written


def test_a_message_whose_arguments_cannot_be_formatted_still_leaks_nothing(captured):
    logger, stream, _handler = captured

    class Hostile:
        def __str__(self) -> str:
            raise ValueError("no")

    logger.warning("token xoxb-unit-bot-token-1234 and %s %s", Hostile())  # one argument short, too
    assert "xoxb-unit-bot-token-1234" not in stream.getvalue()
    assert "could not be formatted" in stream.getvalue()


def test_the_longest_secret_wins_where_one_contains_another():
    redactor = RedactingFilter({"abcd": "SHORT", "abcdefgh": "LONG"})
    assert redactor.redact("x abcdefgh y abcd") == "x [REDACTED:LONG] y [REDACTED:SHORT]"
    assert RedactingFilter({}).redact("nothing to hide") == "nothing to hide"


def test_the_context_of_the_work_in_hand_is_on_each_line_and_ends_with_its_block(captured):
    logger, stream, handler = captured
    with log_context(job="deliver", conversation_id=3, message_id=None):
        add_log_context(message_id=7)
        logger.info("sending")
    logger.info("after")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("sending [job=deliver conversation_id=3 message_id=7]")
    assert second.endswith("after")

    handler.setFormatter(JsonFormatter())
    stream.truncate(0)
    stream.seek(0)
    with log_context(job="mirror", outbox_id=12):
        logger.warning("slow xoxb-unit-bot-token-1234")
    [line] = stream.getvalue().splitlines()
    document = json.loads(line)
    assert document["level"] == "WARNING" and document["logger"] == "threadline.test_logs"
    assert document["message"] == "slow [REDACTED:SLACK_BOT_TOKEN]"
    assert (document["job"], document["outbox_id"]) == ("mirror", 12)
    assert document["ts"].endswith("+00:00")


def test_two_threads_never_see_each_others_context(captured):
    logger, stream, _handler = captured
    inside, go_on = threading.Event(), threading.Event()

    def other() -> None:
        with log_context(conversation_id=99):
            inside.set()
            go_on.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(5)
    with log_context(conversation_id=1):
        logger.info("mine")
    go_on.set()
    thread.join(5)
    assert stream.getvalue().rstrip().endswith("mine [conversation_id=1]")


def test_a_json_traceback_is_one_line_with_the_exception_as_a_field(captured):
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    try:
        raise KeyError("xoxb-unit-bot-token-1234")
    except KeyError:
        logger.exception("boom")
    [line] = stream.getvalue().splitlines()
    document = json.loads(line)
    assert "KeyError: '[REDACTED:SLACK_BOT_TOKEN]'" in document["exception"]


def test_every_configured_secret_is_found_before_validation_url_passwords_in_both_spellings(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("THREADLINE_ENV_FILE", "")
    values = {
        "SLACK_BOT_TOKEN": "xoxb-found-1",
        "SLACK_SIGNING_SECRET": "signing-found-2",
        "OPENAI_API_KEY": "sk-found-3",
        "WHATSAPP_ACCESS_TOKEN": "EAAG-found-4",
        "WHATSAPP_APP_SECRET": "app-found-5",
        "WHATSAPP_VERIFY_TOKEN": "verify-found-6",
        "UNIPILE_API_KEY": "unipile-found-7",
        "UNIPILE_WEBHOOK_SECRET": "hook-found-8",
        "DATABASE_URL": "postgresql://app:db%2Fpass-9@127.0.0.1/x",
        "REDIS_URL": "redis://:redis-pass-10@127.0.0.1:6379/0",
        "EMAIL_IMAP_URL": "imaps://sales%40acme.test:imap-pass-11@imap.acme.test/INBOX",
        "EMAIL_SMTP_URL": "not a url: smtp-whole-12",  # invalid, but still a secret as a whole
        "THREADLINE_AI_RULES": "/no/such/file",  # makes the AI section fail validation
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    found = configured_secrets()
    for expected in (
        "xoxb-found-1",
        "signing-found-2",
        "sk-found-3",
        "EAAG-found-4",
        "app-found-5",
        "verify-found-6",
        "unipile-found-7",
        "hook-found-8",
        "db%2Fpass-9",
        "db/pass-9",
        "redis-pass-10",
        "imap-pass-11",
        "not a url: smtp-whole-12",
    ):
        assert expected in found, expected
    assert found["redis-pass-10"] == "REDIS_URL password"
    assert "postgresql://app:db%2Fpass-9@127.0.0.1/x" not in found  # the URL is not secret, its password is


def test_configure_logging_puts_both_filters_on_the_root_handlers_once(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("THREADLINE_ENV_FILE", "")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "configured-signing-secret")
    root = logging.getLogger()
    before = (root.level, {name: logging.getLogger(name).level for name in QUIET})
    try:
        for _ in range(2):
            configure_logging(Settings.load(THREADLINE_LOG_FORMAT="json"))
        for handler in root.handlers:
            kinds = [type(f) for f in handler.filters]
            assert kinds.count(RedactingFilter) == 1 and kinds.count(ContextFilter) == 1
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", ("configured-signing-secret",), None)
        for handler in root.handlers:
            handler.filter(record)
        assert record.getMessage() == "[REDACTED:SLACK_SIGNING_SECRET]"
    finally:
        root.setLevel(before[0])
        for name, level in before[1].items():
            logging.getLogger(name).setLevel(level)
        logging.captureWarnings(False)
        for handler in root.handlers:
            for f in [f for f in handler.filters if isinstance(f, ContextFilter | RedactingFilter)]:
                handler.removeFilter(f)


def test_beat_losing_the_broker_is_one_warning_line_and_other_errors_keep_their_traceback(captured):
    from celery.beat import SchedulingError
    from kombu.exceptions import OperationalError

    logger, stream, _handler = captured
    logger.addFilter(away := BrokerAwayFilter())
    try:
        for cause in (OperationalError("Error 111 connecting to 127.0.0.1:6379."), KeyError("sweep")):
            try:
                try:
                    raise cause
                except Exception as exc:
                    raise SchedulingError(f"Couldn't apply scheduled task sweep-outbox: {exc}") from exc
            except SchedulingError as exc:  # as celery.beat's apply_entry logs it
                logger.error("Message Error: %s\n%s", exc, ["  File ..."], exc_info=True)
    finally:
        logger.removeFilter(away)
    broker_line, *other = stream.getvalue().splitlines()
    assert broker_line.split(" ", 3)[2] == "WARNING" and "Error 111" in broker_line
    assert "once it is back" in broker_line
    assert other[0].split(" ", 3)[2] == "ERROR" and any("Traceback" in line for line in other)
