"""Settings from the environment and a `.env` file, named as DESIGN §5 promises.

pydantic-settings does the reading, type conversion and `.env` parsing; what we add is a one-line,
human message per problem (`SettingsError`), because `threadline run` must never greet an operator
with a traceback.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import SettingsError

DEFAULT_DATABASE_URL = "sqlite:///./threadline.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

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

    WHATSAPP_ACCESS_TOKEN: SecretStr | None = None
    WHATSAPP_PHONE_NUMBER_ID: str | None = None
    WHATSAPP_APP_SECRET: SecretStr | None = None
    WHATSAPP_VERIFY_TOKEN: SecretStr | None = None
    WHATSAPP_API_URL: str = "https://graph.facebook.com/v23.0"

    EMAIL_IMAP_URL: SecretStr | None = None
    EMAIL_SMTP_URL: SecretStr | None = None
    EMAIL_FROM: str | None = None

    UNIPILE_API_URL: str | None = None
    UNIPILE_API_KEY: SecretStr | None = None
    UNIPILE_ACCOUNT_ID: str | None = None
    UNIPILE_WEBHOOK_SECRET: SecretStr | None = None

    HOST: str = "127.0.0.1"
    PORT: Annotated[int, Field(ge=1, le=65535)] = 3000

    # Seconds between outbox sweeps that pick up work whose hand-off was lost (crash, Redis outage).
    THREADLINE_SWEEP_SECONDS: Annotated[float, Field(gt=0)] = 5.0
    # Slack's documented limit for chat.postMessage is about one per second per channel, bursts allowed.
    THREADLINE_SLACK_POSTS_PER_SECOND: Annotated[float, Field(gt=0)] = 1.0
    THREADLINE_SLACK_POST_BURST: Annotated[int, Field(ge=1)] = 5
    THREADLINE_LOG_LEVEL: str = "INFO"

    @field_validator("DATABASE_URL")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value

    @field_validator("REDIS_URL", "OPENAI_BASE_URL", "UNIPILE_API_URL", "SLACK_CHANNEL", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("SLACK_API_URL")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("WHATSAPP_API_URL", "UNIPILE_API_URL")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

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

    @property
    def whatsapp_enabled(self) -> bool:
        return all((self.WHATSAPP_ACCESS_TOKEN, self.WHATSAPP_PHONE_NUMBER_ID, self.WHATSAPP_APP_SECRET))

    def require_slack(self) -> None:
        """Stop with one line per missing variable before serving (threadline run/web)."""
        missing = [
            name
            for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CHANNEL")
            if getattr(self, name) is None
        ]
        if missing:
            raise SettingsError(
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
                "create the Slack app from slack-manifest.yml, then put its bot token, signing secret "
                "and the channel ID to mirror into in the environment or a .env file (see README)."
            )
        token = self.SLACK_BOT_TOKEN.get_secret_value() if self.SLACK_BOT_TOKEN else ""
        if not token.startswith("xoxb-"):
            raise SettingsError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
        if self.SLACK_APP_TOKEN and not self.SLACK_APP_TOKEN.get_secret_value().startswith("xapp-"):
            raise SettingsError("SLACK_APP_TOKEN must be an app-level token starting with xapp- (or unset).")


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's report into one clear line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
