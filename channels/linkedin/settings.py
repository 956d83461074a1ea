"""LinkedIn's settings section (DESIGN §5): Unipile's API, our account there, and the webhook's secret."""

from __future__ import annotations

from pydantic import SecretStr, field_validator

from core.settings import Section

REQUIRED = (
    "UNIPILE_API_URL",
    "UNIPILE_API_KEY",
    "UNIPILE_ACCOUNT_ID",
    "UNIPILE_WEBHOOK_SECRET",
)


class LinkedInSettings(Section):
    # Your Unipile DSN with the API's path, e.g. https://api8.unipile.com:13851/api/v1
    UNIPILE_API_URL: str | None = None
    UNIPILE_API_KEY: SecretStr | None = None  # sent as X-API-KEY
    UNIPILE_ACCOUNT_ID: str | None = None  # the connected LinkedIn account's id in Unipile
    # Any string; Unipile's webhook is set to send it in an X-Unipile-Secret header.
    UNIPILE_WEBHOOK_SECRET: SecretStr | None = None

    @field_validator("UNIPILE_API_URL")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return None if value is None else value.rstrip("/")

    def missing(self) -> list[str]:
        return [name for name in REQUIRED if getattr(self, name) is None]
