"""Saying what is wrong in an operator's words: URLs as typed (passwords hidden), reasons in one line."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from core.settings import Settings


def database_unreachable(settings: Settings | None, exc: DBAPIError) -> str:
    shown = shown_url(settings.DATABASE_URL) if settings else "the database"
    said = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    reason = said[0] if said else type(exc).__name__
    return f"cannot use the database at {shown}: {reason} (is it running, and is DATABASE_URL right?)"


def shown_url(url: str) -> str:
    """The URL as the operator typed it, password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL has no password we could find to hide; show its scheme only
        return url.split(":", 1)[0] + "://…"
