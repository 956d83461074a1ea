"""WhatsApp's settings section (DESIGN §5)."""

from __future__ import annotations

import re

from pydantic import SecretStr, field_validator

from core.ports import Template
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
    # Approved templates a rep may send once the 24-hour window is closed: `name:language`, comma-separated.
    WHATSAPP_TEMPLATES: str | None = None

    @field_validator("WHATSAPP_API_URL")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("WHATSAPP_TEMPLATES")
    @classmethod
    def _templates_readable(cls, value: str | None) -> str | None:
        if value is not None:
            parse_templates(value)
        return value

    @property
    def templates(self) -> tuple[Template, ...]:
        return parse_templates(self.WHATSAPP_TEMPLATES or "")

    def missing(self) -> list[str]:
        return [name for name in REQUIRED if getattr(self, name) is None]


_NAME = re.compile(r"[a-z0-9_]{1,512}")  # Meta's template names: lowercase letters, digits, underscores
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(_[A-Za-z0-9]{2,4})?")  # en, en_US, zh_CN, es_419…


def parse_templates(value: str) -> tuple[Template, ...]:
    """`follow_up:en_US, reminder:pt_BR` → the templates, in order, each once; ValueError says which
    entry is wrong and what it should look like."""
    templates: list[Template] = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        name, _, language = (piece.strip() for piece in entry.partition(":"))
        if not _NAME.fullmatch(name) or not _LANGUAGE.fullmatch(language):
            raise ValueError(
                f"{entry!r} is not name:language (a template name in lowercase letters, digits and "
                "underscores, a colon, a language code such as en_US)"
            )
        template = Template(name, language)
        if template not in templates:
            templates.append(template)
    return tuple(templates)
