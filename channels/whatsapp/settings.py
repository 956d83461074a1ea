"""WhatsApp's settings section (DESIGN §5)."""

from __future__ import annotations

from pydantic import SecretStr, field_validator

from core.settings import Section

REQUIRED = (
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
)


class WhatsAppSettings(Section):
    WHATSAPP_ACCESS_TOKEN: SecretStr | None = None
    WHATSAPP_PHONE_NUMBER_ID: str | None = None
    WHATSAPP_APP_SECRET: SecretStr | None = None
    WHATSAPP_VERIFY_TOKEN: SecretStr | None = None  # any string; typed into Meta's webhook settings too
    WHATSAPP_API_URL: str = "https://graph.facebook.com/v23.0"

    @field_validator("WHATSAPP_API_URL")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def missing(self) -> list[str]:
        return [name for name in REQUIRED if getattr(self, name) is None]
