"""A thread entry for a message a teammate typed in the provider's own app (LinkedIn itself): it says
"sent from LinkedIn", names no teammate it cannot know, and is never taken for the lead."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.blocks.thread import build_thread_entry, written_on_provider
from core.models import Author, DeliveryStatus, Direction, Member, Message

AT = datetime(2026, 12, 3, 9, 15, tzinfo=UTC)


def message(direction: Direction, author: Author, member: Member | None = None) -> Message:
    return Message(
        id=1,
        channel="linkedin",
        direction=direction,
        author=author,
        member=member,
        member_id=member.id if member is not None else None,
        text="Yes, every week <!channel>",
        kind="text",
        delivery_status=DeliveryStatus.SENT if direction == Direction.OUTBOUND else None,
        created_at=AT,
    )


def test_a_message_typed_in_linkedin_itself_says_sent_from_linkedin():
    entry = message(Direction.OUTBOUND, Author.MEMBER)
    text, blocks = build_thread_entry(entry, "Jane Doe")

    assert written_on_provider(entry)
    context = blocks[0]["elements"][0]["text"]
    assert "sent from LinkedIn" in context and "Jane Doe" not in context
    assert text.startswith("Teammate (sent from LinkedIn): ")
    assert "<!channel>" not in json.dumps(blocks)  # escaped, as every entry's text


def test_a_leads_message_and_a_reps_slack_reply_are_not_sent_from_linkedin():
    ana = Member(id=3, slack_user_id="U0ANA", name="Ana Lima")
    for entry in (message(Direction.INBOUND, Author.LEAD), message(Direction.OUTBOUND, Author.MEMBER, ana)):
        text, blocks = build_thread_entry(entry, "Jane Doe")
        assert not written_on_provider(entry)
        assert "sent from" not in text + json.dumps(blocks)
