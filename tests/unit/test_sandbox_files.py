"""The sandbox channel, a team's try-out lead, says which files a reply carried (it has no media to send)."""

from __future__ import annotations

from channels.sandbox.adapter import SandboxChannel
from core.ports import Outbound, OutboundFile

QUOTE = b"%PDF-1.4 the quote"


def test_the_sandbox_says_which_files_a_reply_carried():
    printed: list[str] = []
    sandbox = SandboxChannel("secret", out=lambda line, flush: printed.append(line))
    reply = Outbound(
        message_id=1,
        channel="sandbox",
        channel_account="sandbox",
        to="jane@example.com",
        text="The quote",
        files=(OutboundFile("q.pdf", "application/pdf", QUOTE),),
    )
    sandbox.send(reply)
    assert printed == [
        "[sandbox] to jane@example.com: The quote",
        f"[sandbox]   + q.pdf (application/pdf, {len(QUOTE)} bytes)",
    ]
