"""Settings from the environment and `.env` files, named as DESIGN §5 promises.

Each part of Threadline reads its own section (`Section` subclasses: core's `Settings` here, each
channel's in its package), from the same sources, in this order (later wins):
1. `.env` next to the project's README (the checkout `python3 dev.py run` starts from),
2. `.env` in the current directory,
3. the environment.
`THREADLINE_ENV_FILE` names one file to read instead of 1 and 2 (empty: none).
pydantic-settings does the reading, type conversion and `.env` parsing; what we add is a one-line,
human message per problem (`SettingsError`), because `threadline run` must never greet an operator
with a traceback.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import SettingsError
from core.routing import Routes, parse_routes

DEFAULT_DATABASE_URL = "sqlite:///./threadline.db"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def env_files() -> list[Path]:
    """The `.env` files settings are read from, existing ones only, in order of precedence (last wins)."""
    chosen = os.environ.get("THREADLINE_ENV_FILE")
    if chosen is not None:
        return [Path(chosen)] if chosen and Path(chosen).is_file() else []
    candidates = [PROJECT_ROOT / ".env", Path.cwd() / ".env"]
    found: list[Path] = []
    for path in candidates:
        if path.is_file() and path.resolve() not in {p.resolve() for p in found}:
            found.append(path)
    return found


class Section(BaseSettings):
    """One part's settings. Unknown variables are ignored: other sections read them."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """Read the section, turning pydantic's report into one clear line per bad variable."""
        try:
            return cls(_env_file=tuple(env_files()) or None, **overrides)  # type: ignore[call-arg]
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                name = ".".join(str(part) for part in error["loc"]) or cls.__name__
                problems.append(f"{name}: {error['msg']}")
            raise SettingsError("invalid setting " + "; ".join(problems)) from None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `FOO=` in a .env file means "not set", not "set to nothing".
        return None if value == "" else value


class Settings(Section):
    """Core's section: storage, the work queue, the HTTP listener, Slack, and Threadline's own knobs."""

    DATABASE_URL: str = DEFAULT_DATABASE_URL
    REDIS_URL: str | None = None

    SLACK_BOT_TOKEN: SecretStr | None = None
    SLACK_SIGNING_SECRET: SecretStr | None = None
    SLACK_APP_TOKEN: SecretStr | None = None
    SLACK_CHANNEL: str | None = None
    SLACK_API_URL: str = "https://slack.com/api/"

    OPENAI_API_KEY: SecretStr | None = None
    OPENAI_BASE_URL: str | None = None
    THREADLINE_AI_MODEL: str = "gpt-4o-mini"

    HOST: str = "127.0.0.1"
    PORT: Annotated[int, Field(ge=1, le=65535)] = 3000
    # A Celery worker's own Prometheus counters (it serves no HTTP otherwise); unset: not served.
    THREADLINE_WORKER_METRICS_PORT: Annotated[int, Field(ge=1, le=65535)] | None = None

    # Seconds between outbox sweeps that pick up work whose hand-off was lost (crash, Redis outage).
    THREADLINE_SWEEP_SECONDS: Annotated[float, Field(gt=0)] = 5.0
    # Slack's documented limit for chat.postMessage is about one per second per channel, bursts allowed
    # (no size published; we assume 5). Our burst is one under it: the post Slack would still allow is
    # a second of headroom for posts that reach Slack closer together than we took their tokens.
    THREADLINE_SLACK_POSTS_PER_SECOND: Annotated[float, Field(gt=0)] = 1.0
    THREADLINE_SLACK_POST_BURST: Annotated[int, Field(ge=1)] = 4
    # How long a worker's claim on an outbox item lasts unrenewed (it is renewed while the work runs).
    THREADLINE_LEASE_SECONDS: Annotated[float, Field(ge=1)] = 60.0
    # The longest wait between retries of Slack work, which never gives up while Slack is away.
    THREADLINE_RETRY_CAP_SECONDS: Annotated[float, Field(ge=1)] = 180.0
    THREADLINE_LOG_LEVEL: str = "INFO"
    # text: one readable line per event; json: one JSON object per line (for a log pipeline, jq).
    THREADLINE_LOG_FORMAT: Literal["text", "json"] = "text"
    # Which Slack channel each campaign or lead channel lives in (core.routing); unset: SLACK_CHANNEL.
    THREADLINE_ROUTES: str | None = None
    # A lead waiting longer than this for our answer gets the thread a reminder, once per wait.
    THREADLINE_SLA_HOURS: Annotated[float, Field(gt=0)] = 24.0
    # on: closing a conversation asks the lead for a 1-5 rating over their channel.
    THREADLINE_CSAT: bool = False

    @field_validator("DATABASE_URL")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value

    @field_validator("SLACK_API_URL")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("THREADLINE_LOG_LEVEL")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    def routes(self, lead_channels: set[str] | None = None) -> Routes:
        return parse_routes(
            self.THREADLINE_ROUTES, default=self.SLACK_CHANNEL or "", lead_channels=lead_channels
        )

    @cached_property
    def database_url(self) -> str:
        """The SQLAlchemy URL: plain `postgresql://` means psycopg 3 (DESIGN §5)."""
        url = self.DATABASE_URL
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def embedded(self) -> bool:
        return self.REDIS_URL is None

    def require_slack(self) -> None:
        """Stop with one line naming what is missing before serving (threadline run/web/worker)."""
        missing = [
            name
            for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CHANNEL")
            if getattr(self, name) is None
        ]
        if missing:
            raise SettingsError(
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
                "create the Slack app from slack-manifest.yml, then put its bot token, signing secret "
                "and the channel ID to mirror into in the environment or a .env file "
                "(README, 'Set up Slack')."
            )
        token = self.SLACK_BOT_TOKEN.get_secret_value() if self.SLACK_BOT_TOKEN else ""
        if not token.startswith("xoxb-"):
            raise SettingsError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
        if self.SLACK_APP_TOKEN and not self.SLACK_APP_TOKEN.get_secret_value().startswith("xapp-"):
            raise SettingsError("SLACK_APP_TOKEN must be an app-level token starting with xapp- (or unset).")


def load_settings(**overrides: object) -> Settings:
    return Settings.load(**overrides)


def secret(value: SecretStr | None) -> str:
    """The secret's value, or "" when unset."""
    return value.get_secret_value() if value is not None else ""
