"""End-to-end fixtures: the app in a subprocess on each runtime, strict Slack and Graph stand-ins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.conftest import ROOT, SPECS, PostgresDatabases
from tests.e2e.harness import (
    APP_TOKEN,
    BOT_TOKEN,
    CHANNEL,
    PHONE_NUMBER_ID,
    SECRETS,
    SIGNING_SECRET,
    WHATSAPP_SECRET,
    WHATSAPP_TOKEN,
    WHATSAPP_VERIFY,
    AppProcess,
)
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

REPS = {"U0ANA": ("ana", "Ana Lima", "ana@example.com"), "U0BOB": ("bob", "Bob Stone", "bob@example.com")}
CELERY_REDIS_DB = 7


RUNTIMES = ("embedded-sqlite", "celery-postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each end-to-end test runs on both runtimes, unless its module names the one it runs on
    (`RUNTIMES = ("celery-postgres",)`): modules about one lead channel's or one Slack surface's
    behaviour — the same code on either runtime — split between the two, which keeps CI inside its
    time while each runtime carries every channel. THREADLINE_E2E_ALL_RUNTIMES=1 runs all on both."""
    if "runtime_env" not in metafunc.fixturenames:
        return
    if any("runtime_env" in str(mark.args[:1]) for mark in metafunc.definition.iter_markers("parametrize")):
        return  # the test chose its runtime itself
    chosen = getattr(metafunc.module, "RUNTIMES", RUNTIMES)
    if os.environ.get("THREADLINE_E2E_ALL_RUNTIMES"):
        chosen = RUNTIMES
    metafunc.parametrize("runtime_env", chosen, indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@contextmanager
def running_slack(kind: type[SlackStandIn] = SlackStandIn) -> Iterator[SlackStandIn]:
    """The strict Slack stand-in with the leads channel and the reps; `kind` may be a subclass."""
    standin = kind(SPECS / "slack" / "methods", bot_token=BOT_TOKEN, app_token=APP_TOKEN)
    standin.start()
    standin.add_channel(CHANNEL, "leads")
    for user_id, (name, real_name, email) in REPS.items():
        standin.add_user(user_id, name, real_name, email=email)
    yield standin
    standin.stop()
    assert standin.violations == [], "the app made calls Slack's spec does not allow"


@contextmanager
def running_graph(kind: type[GraphStandIn] = GraphStandIn) -> Iterator[GraphStandIn]:
    standin = kind(
        SPECS / "whatsapp" / "business-messaging-api_v23.0.yaml",
        access_token=WHATSAPP_TOKEN,
        phone_number_id=PHONE_NUMBER_ID,
    )
    standin.start()
    yield standin
    standin.stop()
    assert standin.violations == [], "the app made calls the WhatsApp Cloud API spec does not allow"


def runtime_environment(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> dict[str, str]:
    if kind == "embedded-sqlite":
        return {"DATABASE_URL": f"sqlite:///{tmp_path / 'threadline.db'}"}
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    redis_base: str = request.getfixturevalue("redis_url")
    redis_url = redis_base.rsplit("/", 1)[0] + f"/{CELERY_REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    return {"DATABASE_URL": databases.create(), "REDIS_URL": redis_url}


def app_environment(
    runtime_env: dict[str, str], slack: SlackStandIn, graph: GraphStandIn, tmp_path: Path
) -> dict[str, str]:
    keep = {
        k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT"}
    }
    return {
        **keep,
        **runtime_env,
        "PYTHONPATH": str(ROOT),
        "THREADLINE_TEST_CWD": str(tmp_path),
        "THREADLINE_ENV_FILE": "",  # no stray .env from the developer's checkout
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_CHANNEL": CHANNEL,
        "SLACK_API_URL": slack.base_url,
        "WHATSAPP_ACCESS_TOKEN": WHATSAPP_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_APP_SECRET": WHATSAPP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": WHATSAPP_VERIFY,
        "WHATSAPP_API_URL": graph.base_url,
        "THREADLINE_SWEEP_SECONDS": "0.5",
        "THREADLINE_LOG_LEVEL": "DEBUG",  # the most talkative level is where a leaked secret would show
    }


@contextmanager
def running_app(env: dict[str, str], log_path: Path) -> Iterator[AppProcess]:
    process = AppProcess(env=env, log_path=log_path)
    process.start()
    yield process
    process.stop()
    logs = process.logs()
    leaked = [name for name, secret in SECRETS.items() if secret in logs]
    assert leaked == [], f"secrets in the logs: {leaked}"
    assert "Traceback" not in logs, logs[-5000:]


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with running_slack() as standin:
        yield standin


@pytest.fixture
def graph() -> Iterator[GraphStandIn]:
    with running_graph() as standin:
        yield standin


@pytest.fixture
def runtime_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    return runtime_environment(request, request.param, tmp_path)


@pytest.fixture
def app_env(
    runtime_env: dict[str, str], slack: SlackStandIn, graph: GraphStandIn, tmp_path: Path
) -> dict[str, str]:
    return app_environment(runtime_env, slack, graph, tmp_path)


@pytest.fixture
def app(app_env: dict[str, str], tmp_path: Path) -> Iterator[AppProcess]:
    with running_app(app_env, tmp_path / "threadline.log") as process:
        yield process
