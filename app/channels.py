"""The lead channels this server knows. Adding a channel: its package under channels/, and one line here."""

from __future__ import annotations

from channels import email, linkedin, sandbox, whatsapp
from core.ports import ChannelPlugin

PLUGINS: tuple[ChannelPlugin, ...] = (
    whatsapp.PLUGIN,
    email.PLUGIN,
    linkedin.PLUGIN,
    sandbox.PLUGIN,
)
