"""LinkedIn (through Unipile) in, Slack thread out, reply back: the whole app over HTTP, on both runtimes.

Unipile is the strict stand-in (tests/standins/unipile.py); its webhooks go through the real
`/webhooks/linkedin` endpoint with the shared secret, as Unipile sends them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.models import ChannelAccount, Direction, Health, Inbox, InboxStatus, Message
from tests.e2e.conftest import running_app
from tests.e2e.harness import CHANNEL, AppProcess, message_event
from tests.standins.slack_api import SlackStandIn
from tests.standins.unipile import UnipileStandIn, account_status, attendee, message_webhook

RUNTIMES = ("embedded-sqlite",)  # one runtime is enough here: see tests/e2e/conftest.py

API_KEY = "unipile-api-key-for-tests"
WEBHOOK_SECRET = "unipile-webhook-secret-for-tests"
ACCOUNT = "acc-Threadline-1"
OWN = "ACoAAOURSELVES"
CHAT = "chat-jane-1"
LEAD = attendee("ACoAAJANEDOE", "Jane Doe")
US = attendee(OWN, "Ana Lima")


@pytest.fixture
def unipile() -> Iterator[UnipileStandIn]:
    standin = UnipileStandIn(api_key=API_KEY, account_id=ACCOUNT, own_provider_id=OWN)
    standin.start()
    standin.add_chat(CHAT)
    yield standin
    standin.stop()
    assert standin.violations == [], "the app made calls Unipile's API does not allow"


@pytest.fixture
def linkedin(app_env: dict[str, str], unipile: UnipileStandIn, tmp_path: Path) -> Iterator[AppProcess]:
    env = {
        **app_env,
        "UNIPILE_API_URL": unipile.base_url,
        "UNIPILE_API_KEY": API_KEY,
        "UNIPILE_ACCOUNT_ID": ACCOUNT,
        "UNIPILE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    with running_app(env, tmp_path / "threadline.log") as process:
        yield process
    logs = process.logs()
    assert API_KEY not in logs and WEBHOOK_SECRET not in logs, "a Unipile secret in the logs"


def post(app: AppProcess, payload: Any, *, secret: str | None = WEBHOOK_SECRET) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Unipile-Secret"] = secret
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return httpx.post(f"{app.url}/webhooks/linkedin", content=raw, headers=headers, timeout=10)


def lead_writes(app: AppProcess, text: str, *, message_id: str, **extra: Any) -> None:
    payload = message_webhook(
        account_id=ACCOUNT,
        chat_id=CHAT,
        message_id=message_id,
        text=text,
        sender=LEAD,
        attendees=[US],
        **extra,
    )
    response = post(app, payload)
    assert response.status_code == 200, response.text


def card_ts(slack: SlackStandIn) -> str:
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) >= 1)
    (card,) = [m for m in slack.messages(CHANNEL) if "threadline_card" in json.dumps(m.get("metadata") or {})]
    return str(card["ts"])


def thread(slack: SlackStandIn) -> list[dict[str, Any]]:
    return slack.replies(CHANNEL, card_ts(slack))


def shown(entry: dict[str, Any]) -> str:
    return entry["text"] + json.dumps(entry.get("blocks") or [])


def settled(app: AppProcess) -> bool:
    """Every delivery the app took is processed (none waiting, none put off for later)."""
    with app.database() as db, db.sessions() as session:
        return all(status == InboxStatus.DONE for status in session.scalars(select(Inbox.status)))


def test_a_leads_message_and_file_reach_the_thread_and_the_reply_reaches_the_chat_once(
    linkedin: AppProcess, slack: SlackStandIn, unipile: UnipileStandIn
):
    # Unipile echoes our send through the webhook before it even answers the send.
    unipile.echo_sends_to(f"{linkedin.url}/webhooks/linkedin", WEBHOOK_SECRET, before_answer=True)
    unipile.add_attachment("li-msg-1", "att-1", "application/pdf", b"%PDF-1.7 the brochure")
    lead_writes(
        linkedin,
        "Hi! Is the Pro plan still on sale?",
        message_id="li-msg-1",
        attachments=[
            {"id": "att-1", "type": "file", "mimetype": "application/pdf", "file_name": "brief.pdf"}
        ],
    )

    slack.wait_for(lambda: len(thread(slack)) >= 1)
    card = slack.message(CHANNEL, card_ts(slack))
    assert "Jane Doe" in shown(card) and "LinkedIn" in shown(card)
    assert "Is the Pro plan still on sale?" in shown(thread(slack)[0])
    slack.wait_for(lambda: len(slack.thread_files(CHANNEL, card_ts(slack))) == 1)
    ((_, brochure),) = slack.thread_files(CHANNEL, card_ts(slack))
    assert brochure.name == "brief.pdf" and brochure.content == b"%PDF-1.7 the brochure"

    reply_ts = slack.post_as_user(CHANNEL, "U0ANA", "Yes &amp; until Friday!", thread_ts=card_ts(slack))
    event = message_event(user="U0ANA", text="Yes &amp; until Friday!", ts=reply_ts, thread_ts=card_ts(slack))
    assert linkedin.slack_event(event).status_code == 200

    unipile.wait_for(
        lambda: len(unipile.sent) == 1 and unipile.echo is not None and unipile.echo.answers == [200]
    )
    (sent,) = unipile.sent
    assert (sent.chat_id, sent.text, sent.files) == (CHAT, "Yes & until Friday!", [])
    slack.wait_for(lambda: "white_check_mark" in slack.reactions(CHANNEL, reply_ts))  # ✅ sent
    slack.wait_for(lambda: settled(linkedin), timeout=30)  # the echo was put off, then taken again

    entries = thread(slack)
    assert sum("until Friday" in shown(e) for e in entries) == 1  # the rep's own message, once
    assert not any("sent from LinkedIn" in shown(e) for e in entries)  # the echo is our reply, not a new one
    with linkedin.database() as db, db.sessions() as session:
        directions = list(session.scalars(select(Message.direction).order_by(Message.id)))
    assert directions == [Direction.INBOUND, Direction.OUTBOUND]
    assert len(unipile.sent) == 1


def test_a_message_written_in_linkedin_itself_is_mirrored_as_sent_from_linkedin_and_never_sent(
    linkedin: AppProcess, slack: SlackStandIn, unipile: UnipileStandIn
):
    lead_writes(linkedin, "Can we talk tomorrow?", message_id="li-msg-1")
    slack.wait_for(lambda: len(thread(slack)) == 1)

    # Ana answers from LinkedIn's own app: the webhook names her account as the sender (no is_sender),
    # so the app asks Unipile who our account is.
    ours = message_webhook(
        account_id=ACCOUNT,
        chat_id=CHAT,
        message_id="li-msg-2",
        text="Sure, 10am?",
        sender=US,
        attendees=[LEAD],
    )
    assert post(linkedin, ours).status_code == 200

    slack.wait_for(lambda: len(thread(slack)) == 2)
    entry = thread(slack)[1]
    assert "Sure, 10am?" in shown(entry) and "sent from LinkedIn" in shown(entry)
    assert "Jane Doe" not in json.dumps(entry["blocks"][0])  # not taken for the lead
    slack.wait_for(lambda: "Pending" in shown(slack.message(CHANNEL, card_ts(slack))))  # she has her answer
    assert unipile.sent == []  # never sent again
    assert any(call.path == f"/api/v1/accounts/{ACCOUNT}" for call in unipile.calls)


def test_an_account_disconnect_and_reconnect_are_said_in_the_channel(
    linkedin: AppProcess, slack: SlackStandIn, unipile: UnipileStandIn
):
    assert post(linkedin, account_status(ACCOUNT, "CREDENTIALS")).status_code == 200

    slack.wait_for(lambda: any("not connected" in m["text"] for m in slack.messages(CHANNEL)))
    (notice,) = [m for m in slack.messages(CHANNEL) if "not connected" in m["text"]]
    assert "LinkedIn" in notice["text"] and "reconnect the account in Unipile" in notice["text"]
    with linkedin.database() as db, db.sessions() as session:
        account = session.scalars(select(ChannelAccount).where(ChannelAccount.channel == "linkedin")).one()
        assert account.health == Health.BROKEN and "CREDENTIALS" in (account.reason or "")

    assert post(linkedin, account_status(ACCOUNT, "OK")).status_code == 200
    slack.wait_for(lambda: any("works again" in m["text"] for m in slack.messages(CHANNEL)))


def test_the_webhook_refuses_what_unipile_did_not_send(
    linkedin: AppProcess, slack: SlackStandIn, unipile: UnipileStandIn
):
    payload = message_webhook(
        account_id=ACCOUNT, chat_id=CHAT, message_id="li-x", text="hi", sender=LEAD, attendees=[US]
    )
    assert post(linkedin, payload, secret=None).status_code == 401
    assert post(linkedin, payload, secret="not-the-secret").status_code == 401
    assert post(linkedin, b"{not json").status_code == 400
    assert post(linkedin, {"AccountStatus": "CREDENTIALS"}).status_code == 400
    assert (
        post(linkedin, b'{"event": "message_received", "pad": "' + b"x" * 1_100_000 + b'"}').status_code
        == 413
    )
    assert linkedin.count(Message) == 0 and linkedin.count(Inbox) == 0


def test_the_webhook_is_not_there_when_linkedin_is_not_configured(app: AppProcess):
    payload = message_webhook(
        account_id=ACCOUNT, chat_id=CHAT, message_id="li-x", text="hi", sender=LEAD, attendees=[US]
    )
    assert post(app, payload).status_code == 404


def test_a_reps_file_in_the_thread_reaches_the_linkedin_chat_as_an_attachment(
    linkedin: AppProcess, slack: SlackStandIn, unipile: UnipileStandIn
):
    lead_writes(linkedin, "Could you send the brochure?", message_id="li-msg-1")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    brochure = slack.add_file("U0ANA", "brochure.pdf", "application/pdf", b"%PDF-1.4 our brochure")
    ts = slack.post_file_as_user(CHANNEL, "U0ANA", "Here it is", [brochure], thread_ts=card_ts(slack))
    event = {
        **message_event(user="U0ANA", text="Here it is", ts=ts, thread_ts=card_ts(slack)),
        "subtype": "file_share",
        "files": [brochure],
    }
    assert linkedin.slack_event(event).status_code == 200

    unipile.wait_for(lambda: len(unipile.sent) == 1)
    (sent,) = unipile.sent
    assert (sent.chat_id, sent.text) == (CHAT, "Here it is")
    assert [(f.name, f.mime_type, f.content) for f in sent.files] == [
        ("brochure.pdf", "application/pdf", b"%PDF-1.4 our brochure")
    ]
    slack.wait_for(lambda: "white_check_mark" in slack.reactions(CHANNEL, ts))
