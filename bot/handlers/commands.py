"""The /leads slash command. This first version answers `help` and explains unknown input."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.context import BotContext
from bot.mrkdwn import escape

HELP = (
    "*/leads* — find conversations\n"
    "• `/leads help` — this help\n"
    "Every conversation lives as a thread in the Threadline channel: reply in the thread to answer the "
    "lead, start with @someone or `note:` for an internal note, and use the card's buttons to take over, "
    "assign, tag or close."
)


async def handle_leads(ctx: BotContext, ack: AsyncAck, command: dict[str, Any]) -> None:
    text = (command.get("text") or "").strip()
    if text in {"", "help"}:
        await ack(response_type="ephemeral", text=HELP)
        return
    await ack(response_type="ephemeral", text=f"I don't know `/leads {escape(text[:100])}` yet.\n\n{HELP}")


def register(app: AsyncApp, ctx: BotContext) -> None:
    async def on_leads(ack: AsyncAck, command: dict[str, Any]) -> None:
        await handle_leads(ctx, ack, command)

    # Whatever the team named the command in its manifest (/leads by default), it means this one.
    app.command(re.compile(r"^/"))(on_leads)
