"""`threadline check`: what is configured, what is reachable, what is missing — one line each."""

from __future__ import annotations

from collections.abc import Callable

from core.settings import Settings

OK, MISSING, FAIL = "ok", "missing", "FAIL"


def run_checks(settings: Settings, out: Callable[[str], None] = print) -> int:
    failures = 0

    def line(state: str, what: str, detail: str) -> None:
        nonlocal failures
        failures += state == FAIL
        out(f"[{state:^7}] {what:<18} {detail}")

    _database(settings, line)
    _redis(settings, line)
    _slack(settings, line)
    _channels(settings, line)
    # The agent is not part of this version: say so plainly, whether or not a key is set.
    key = "OPENAI_API_KEY is set but unused" if settings.OPENAI_API_KEY else "OPENAI_API_KEY is not set"
    line(MISSING, "AI agent", f"off: not part of this version yet ({key}), so every conversation is manual")
    return 1 if failures else 0


def _database(settings: Settings, line: Callable[[str, str, str], None]) -> None:
    from sqlalchemy.engine import make_url

    from core import migrate
    from core.db import make_engine

    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    engine = make_engine(settings.database_url)
    try:
        current, head = migrate.current_revision(engine), migrate.head_revision()
        if current == head:
            line(OK, "database", f"{shown} (schema {current})")
        else:
            line(FAIL, "database", f"{shown} is at schema {current}, needs {head}: run `threadline migrate`")
    except Exception as exc:
        line(FAIL, "database", f"{shown} unreachable: {type(exc).__name__}: {exc}".splitlines()[0])
    finally:
        engine.dispose()


def _redis(settings: Settings, line: Callable[[str, str, str], None]) -> None:
    if settings.REDIS_URL is None:
        line(OK, "worker", "embedded (REDIS_URL unset): the worker runs inside `threadline run`")
        return
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
        line(OK, "redis", "reachable; run `threadline worker` next to `threadline web`")
    except Exception as exc:
        line(FAIL, "redis", f"unreachable: {exc}")


def _slack(settings: Settings, line: Callable[[str, str, str], None]) -> None:
    missing = [
        n
        for n in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CHANNEL")
        if getattr(settings, n) is None
    ]
    if missing:
        line(FAIL, "slack", f"{', '.join(missing)} not set: see README, 'Create the Slack app'")
        return
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    token = settings.SLACK_BOT_TOKEN.get_secret_value() if settings.SLACK_BOT_TOKEN else ""
    client = WebClient(token=token, base_url=settings.SLACK_API_URL, timeout=10)
    try:
        auth = client.auth_test()
        line(OK, "slack", f"signed in as {auth.get('user')} in {auth.get('team')}")
    except SlackApiError as exc:
        line(FAIL, "slack", f"auth.test failed: {exc.response.get('error')}")
        return
    except Exception as exc:
        line(FAIL, "slack", f"unreachable at {settings.SLACK_API_URL}: {type(exc).__name__}")
        return
    try:
        channel = client.conversations_info(channel=settings.SLACK_CHANNEL or "")["channel"]
        if channel.get("is_member"):
            line(
                OK, "slack channel", f"#{channel.get('name')} ({settings.SLACK_CHANNEL}); the app is a member"
            )
        else:
            line(FAIL, "slack channel", f"the app is not in #{channel.get('name')}: /invite it there")
    except SlackApiError as exc:
        line(FAIL, "slack channel", f"{settings.SLACK_CHANNEL}: {exc.response.get('error')}")
    mode = "Socket Mode (SLACK_APP_TOKEN set)" if settings.SLACK_APP_TOKEN else "HTTP at POST /slack/events"
    line(OK, "slack transport", mode)


def _channels(settings: Settings, line: Callable[[str, str, str], None]) -> None:
    if settings.whatsapp_enabled:
        verify = (
            "" if settings.WHATSAPP_VERIFY_TOKEN else " (WHATSAPP_VERIFY_TOKEN unset: Meta cannot verify)"
        )
        line(
            OK,
            "whatsapp",
            f"number {settings.WHATSAPP_PHONE_NUMBER_ID} via {settings.WHATSAPP_API_URL}{verify}",
        )
    else:
        line(
            MISSING,
            "whatsapp",
            "off: set WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_APP_SECRET",
        )
    line(MISSING if not settings.EMAIL_IMAP_URL else OK, "email", "not part of this version yet")
    line(MISSING if not settings.UNIPILE_API_URL else OK, "linkedin", "not part of this version yet")
