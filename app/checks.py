"""`threadline check`: the operator's first stop — what is configured, reachable and missing, and what to do.

One line per part; exit status 1 when anything needs fixing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from ai.settings import AISettings
from app.channels import PLUGINS
from app.describe import database_unreachable, shown_url
from core import migrate
from core.db import make_engine
from core.errors import SettingsError
from core.ports import ChannelOff
from core.queries.operations import work_summary
from core.routing import Routes
from core.settings import Settings, env_files, secret

if TYPE_CHECKING:
    from slack_sdk import WebClient

Line = Callable[[str, str, str], None]
OK, OFF, FAIL = "ok", "off", "FAIL"
STALE_SECONDS = 300  # work waiting longer than this, not put off on purpose, means nobody takes it


def check(settings: Settings, _args: argparse.Namespace | None = None) -> int:
    return run_checks(settings)


def run_checks(settings: Settings, out: Callable[[str], None] = print) -> int:
    failures = 0

    def line(state: str, what: str, detail: str) -> None:
        nonlocal failures
        failures += state == FAIL
        out(f"[{state:^6}] {what:<18} {detail}")

    files = ", ".join(str(path) for path in env_files())
    line(
        OK,
        "settings",
        f"from the environment and {files}" if files else "from the environment (no .env file)",
    )
    _database(settings, line)
    _work(settings, line)
    _worker(settings, line)
    _metrics(settings, line)
    _slack(settings, line)
    _channels(line)
    _agent(line, out)
    return 1 if failures else 0


def _agent(line: Line, out: Callable[[str], None]) -> None:
    """The AI agent: on with OPENAI_API_KEY; its knowledge and escalation rules (the defaults printed)."""
    from ai.knowledge import load_folder
    from ai.rules import DEFAULT_RULES, load_rules

    try:
        ai = AISettings.load()
        if ai.on:
            load_rules(ai.THREADLINE_AI_RULES)
    except SettingsError as exc:
        line(FAIL, "AI agent", str(exc))
        return
    if not ai.on:
        line(OFF, "AI agent", "OPENAI_API_KEY is not set: AI off, every conversation is handled by people")
        return
    server = ai.OPENAI_BASE_URL or "OpenAI's API"
    state, detail = _model_server(ai)
    line(state, "AI agent", f"model {ai.THREADLINE_AI_MODEL} at {server}: {detail}")
    if state == FAIL:
        return
    folder = ai.THREADLINE_KNOWLEDGE_DIR
    files = (
        f"{len(load_folder(folder))} entries from {folder}" if folder else "THREADLINE_KNOWLEDGE_DIR unset"
    )
    line(OK, "AI knowledge", f"{files}, plus the approved entries in the database")
    if ai.THREADLINE_AI_RULES is not None:
        line(OK, "AI rules", f"from {ai.THREADLINE_AI_RULES}")
    else:
        line(
            OK,
            "AI rules",
            "the built-in defaults (set THREADLINE_AI_RULES to a file like this to change them):",
        )
        for rule in DEFAULT_RULES.splitlines():
            out(f"           {rule}")


def _model_server(ai: AISettings) -> tuple[str, str]:
    """Whether the model server answers this key (it lists its models), and what to do if not."""
    import openai

    client = openai.OpenAI(
        api_key=secret(ai.OPENAI_API_KEY), base_url=ai.OPENAI_BASE_URL, timeout=10, max_retries=0
    )
    try:
        listed = {model.id for model in client.models.list()}
    except openai.AuthenticationError:
        return FAIL, "the server refused OPENAI_API_KEY (401): copy the key again"
    except openai.APIStatusError as exc:
        return FAIL, (
            f"the server answered HTTP {exc.status_code} to GET /models: is OPENAI_BASE_URL its /v1 address, "
            "and is the server healthy (its own log says why)?"
        )
    except openai.OpenAIError as exc:
        return FAIL, f"unreachable ({type(exc).__name__}): is OPENAI_BASE_URL right (it usually ends in /v1)?"
    finally:
        client.close()
    if listed and ai.THREADLINE_AI_MODEL not in listed:
        # Some servers answer to names they do not list (Ollama's tags): say so, do not fail.
        shown = ", ".join(sorted(listed)[:8])
        return OK, f"reachable, but it does not list this model (it lists {shown}); check THREADLINE_AI_MODEL"
    return OK, "reachable with the key"


def _database(settings: Settings, line: Line) -> None:
    from sqlalchemy.exc import DBAPIError

    shown = shown_url(settings.DATABASE_URL)
    engine = make_engine(settings.database_url)
    try:
        current, head = migrate.current_revision(engine), migrate.head_revision()
        if current == head:
            line(OK, "database", f"{shown} (schema {current})")
        elif current is None:
            line(FAIL, "database", f"{shown} is empty: run `threadline migrate` (or `threadline run`)")
        else:
            line(FAIL, "database", f"{shown} is at schema {current}, needs {head}: run `threadline migrate`")
    except DBAPIError as exc:
        line(FAIL, "database", database_unreachable(settings, exc))
    finally:
        engine.dispose()


def _work(settings: Settings, line: Line) -> None:
    """The inbox and outbox, and the connections workers found broken."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.orm import Session

    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            summary = work_summary(session)
    except DBAPIError:
        return  # the database line already said why
    finally:
        engine.dispose()
    waiting = summary.inbox.get("new", 0) + summary.inbox.get("running", 0)
    parked = summary.inbox.get("parked", 0)
    detail = f"{waiting} waiting (oldest {summary.inbox_oldest_seconds:.0f}s), {parked} parked"
    if parked:
        shown = "; ".join(f"#{p.id} {p.source}: {p.reason[:160]}" for p in summary.parked)
        line(FAIL, "inbox", f"{detail} — {shown}. Fix the cause, then `threadline replay --parked`")
    elif summary.inbox_oldest_seconds > STALE_SECONDS:
        line(FAIL, "inbox", f"{detail} — nothing is processing it: {_no_worker(settings)}")
    else:
        line(OK, "inbox", detail)
    pending, failed = summary.outbox.get("pending", 0), summary.outbox.get("failed", 0)
    detail = (
        f"{pending} pending (oldest due {summary.outbox_oldest_seconds:.0f}s ago), "
        f"{summary.outbox.get('running', 0)} running, {failed} failed for good"
    )
    if summary.outbox_oldest_seconds > STALE_SECONDS:
        # Work put off by a rate limit or a broken connection is not due: due and untaken is no worker.
        line(FAIL, "outbox", f"{detail} — due work is not being taken: {_no_worker(settings)}")
    else:
        line(OK, "outbox", detail)
    for connection in summary.connections:
        what = f"{connection.channel} {connection.account}"[:18]
        seen = (
            f"last message {connection.last_message_at:%Y-%m-%d %H:%M} UTC"
            if connection.last_message_at
            else "no message yet"
        )
        if connection.broken:
            since = f" since {connection.since:%Y-%m-%d %H:%M} UTC" if connection.since else ""
            line(FAIL, what, f"broken{since}: {connection.reason}; work waits and resumes once fixed")
        elif connection.channel != "slack":
            line(OK, what, seen)


def _no_worker(settings: Settings) -> str:
    if settings.embedded:
        return "is `threadline run` running (its worker runs inside it)? Its log says why work fails"
    return "is a `threadline worker` running against this database and REDIS_URL? Start one, or read its log"


def _metrics(settings: Settings, line: Line) -> None:
    """Where Prometheus finds the figures (docs/operations.md)."""
    web = f"http://{settings.HOST}:{settings.PORT}/metrics"
    if settings.embedded:
        line(OK, "metrics", f"{web} (the worker runs inside: one endpoint has everything)")
    elif settings.THREADLINE_WORKER_METRICS_PORT is None:
        line(
            OFF,
            "metrics",
            f"{web}; the workers' own (sends, Slack and provider calls) are not served: "
            "set THREADLINE_WORKER_METRICS_PORT to scrape them",
        )
    else:
        port = settings.THREADLINE_WORKER_METRICS_PORT
        line(OK, "metrics", f"{web}, and each worker's at http://{settings.HOST}:{port}/metrics")


def _worker(settings: Settings, line: Line) -> None:
    if settings.REDIS_URL is None:
        line(OK, "worker", "embedded (REDIS_URL unset): the worker runs inside `threadline run`")
        return
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
        line(
            OK,
            "redis",
            f"{shown_url(settings.REDIS_URL)} reachable; run `threadline worker` next to `threadline web`",
        )
    except redis.RedisError as exc:
        line(FAIL, "redis", f"{shown_url(settings.REDIS_URL)} unreachable: {exc} (is Redis running?)")


def _slack(settings: Settings, line: Line) -> None:
    try:
        settings.require_slack()
    except SettingsError as exc:
        line(FAIL, "slack", str(exc))
        return
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=secret(settings.SLACK_BOT_TOKEN), base_url=settings.SLACK_API_URL, timeout=10)
    try:
        auth = client.auth_test()
        line(OK, "slack", f"signed in as {auth.get('user')} in {auth.get('team')}")
    except SlackApiError as exc:
        error = exc.response.get("error")
        hint = (
            " — the bot token is wrong or revoked: copy it again from OAuth & Permissions"
            if error in {"invalid_auth", "not_authed", "token_revoked", "account_inactive"}
            else " — Slack refuses for now: run check again in a minute; if it lasts, see status.slack.com"
        )
        line(FAIL, "slack", f"auth.test failed: {error}{hint}")
        return
    except Exception as exc:  # anything between us and Slack: say what, not a traceback
        line(FAIL, "slack", f"{settings.SLACK_API_URL} unreachable: {type(exc).__name__}: {exc}")
        return
    try:
        routes = settings.routes({plugin.name for plugin in PLUGINS})
    except SettingsError as exc:
        line(FAIL, "slack routes", str(exc))
        return
    for channel_id, why in _route_names(routes).items():
        _slack_channel(client, channel_id, why, line)
    if settings.SLACK_APP_TOKEN:
        _socket_mode(settings, line)
    else:
        line(OK, "slack transport", "HTTP: Slack must reach https://<this server>/slack/events")


def _route_names(routes: Routes) -> dict[str, str]:
    """Each Slack channel conversations may live in, and what sends them there."""
    names: dict[str, list[str]] = {routes.default: ["SLACK_CHANNEL"]}
    for campaign, channel_id in routes.campaigns.items():
        names.setdefault(channel_id, []).append(f"campaign:{campaign}")
    for lead_channel, channel_id in routes.channels.items():
        names.setdefault(channel_id, []).append(lead_channel)
    return {channel_id: ", ".join(why) for channel_id, why in names.items()}


def _slack_channel(client: WebClient, channel_id: str, why: str, line: Line) -> None:
    """The app must be a member of every channel a conversation may be routed to."""
    from slack_sdk.errors import SlackApiError

    try:
        channel = client.conversations_info(channel=channel_id)["channel"]
    except SlackApiError as exc:
        line(
            FAIL,
            "slack channel",
            f"{channel_id} ({why}): {exc.response.get('error')} "
            "(use the channel's ID, e.g. C0123456789, from its details in Slack)",
        )
        return
    if channel.get("is_member"):
        line(OK, "slack channel", f"#{channel.get('name')} ({channel_id}, {why}); the app is a member")
    else:
        line(
            FAIL,
            "slack channel",
            f"the app is not in #{channel.get('name')} ({why}): /invite @Threadline there",
        )


def _socket_mode(settings: Settings, line: Line) -> None:
    """Ask Slack for a Socket Mode URL with the app-level token: proves the token and its scope."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(base_url=settings.SLACK_API_URL, timeout=10)
    try:
        client.apps_connections_open(app_token=secret(settings.SLACK_APP_TOKEN))
        line(OK, "slack transport", "Socket Mode: the app-level token is accepted; no public URL needed")
    except SlackApiError as exc:
        line(
            FAIL,
            "slack transport",
            f"Slack refused SLACK_APP_TOKEN ({exc.response.get('error')}): generate "
            "an app-level token with the connections:write scope under Basic Information",
        )
    except Exception as exc:  # the network between us and Slack
        line(FAIL, "slack transport", f"could not open a Socket Mode connection: {exc}")


def _channels(line: Line) -> None:
    for plugin in PLUGINS:
        try:
            loaded = plugin.load()
        except SettingsError as exc:
            line(FAIL, plugin.name, str(exc))
            continue
        if isinstance(loaded, ChannelOff):
            line(FAIL if loaded.misconfigured else OFF, plugin.name, loaded.reason)
            continue
        for health in loaded.health():
            line(_STATES[health.state], health.what, health.detail)


_STATES: dict[str, str] = {"ok": OK, "off": OFF, "fail": FAIL}
