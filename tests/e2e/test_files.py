"""Files both ways through the real endpoints: a lead's WhatsApp photo into the thread, a rep's file out."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import func, select

from core.models import Inbox, InboxStatus
from tests.e2e.harness import CHANNEL, PHONE_NUMBER_ID, AppProcess, message_event
from tests.e2e.test_whatsapp_slack import LEAD, card_of, lead_writes, thread
from tests.standins import meta_webhooks as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.slack_api import SlackStandIn

RUNTIMES = ("embedded-sqlite",)  # one runtime is enough here: see tests/e2e/conftest.py

PHOTO = b"\xff\xd8\xff\xe0 a lead's photo" * 50
BROCHURE = b"%PDF-1.4 our brochure"
EXAMPLE_MEDIA_ID = "1003383421387256"  # the id meta_webhooks.media_message names, as in Meta's example


def slack_events_done(app: AppProcess) -> int:
    """Slack events the app has finished with (stored in the inbox, then handled)."""
    with app.database() as db, db.sessions() as session:
        query = select(func.count()).where(Inbox.source == "slack", Inbox.status == InboxStatus.DONE)
        return session.scalar(query) or 0


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the app did not get there in time"
        time.sleep(0.05)  # polling the app's database, not waiting for luck


def test_a_whatsapp_photo_with_a_caption_shows_in_the_thread_as_a_file_with_its_caption(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    graph.add_media(PHOTO, "image/jpeg", media_id=EXAMPLE_MEDIA_ID)
    payload = meta.media_message(
        "image", wa_id=LEAD, name="Jane", caption="our shop <!here>", phone_number_id=PHONE_NUMBER_ID
    )
    assert app.whatsapp(payload).status_code == 200

    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1 and len(thread(slack)) == 2)
    entry, share = thread(slack)
    assert "our shop" in entry["text"]
    [(_, uploaded)] = slack.thread_files(CHANNEL, card_of(slack)["ts"])
    assert uploaded.content == PHOTO and uploaded.title.endswith(".jpeg")
    assert share["text"] == "our shop &lt;!here&gt;"  # the caption, escaped: it pings nobody
    # Slack tells us of our own upload as a file_share by our bot user (no bot_id): never a reply.
    echo = {
        **message_event(user="U0BOT", text=share["text"], ts=share["ts"], thread_ts=card_of(slack)["ts"]),
        "subtype": "file_share",
        "files": share["files"],
    }
    assert app.slack_event(echo).status_code == 200
    wait_until(lambda: slack_events_done(app) == 1)
    lead_writes(app, "did it arrive?", message_id="wamid.after-photo")
    slack.wait_for(lambda: len(thread(slack)) == 3)
    assert len(slack.calls_to("files.completeUploadExternal")) == 1
    assert graph.sent == [] and slack.ephemerals == [] and slack.calls_to("users.info") == []


def test_a_reps_file_in_the_thread_reaches_the_lead_as_whatsapp_media(
    app: AppProcess, slack: SlackStandIn, graph: GraphStandIn
):
    lead_writes(app, "send the brochure", message_id="wamid.file")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    card_ts = card_of(slack)["ts"]
    brochure = slack.add_file("U0ANA", "brochure.pdf", "application/pdf", BROCHURE)
    ts = slack.post_file_as_user(CHANNEL, "U0ANA", "Here it is", [brochure], thread_ts=card_ts)
    event = {
        **message_event(user="U0ANA", text="Here it is", ts=ts, thread_ts=card_ts),
        "subtype": "file_share",
        "files": [brochure],
    }
    assert app.slack_event(event).status_code == 200

    graph.wait_for(lambda: len(graph.sent) == 1)
    [sent] = graph.sent
    assert sent.type == "document"
    assert sent.body["document"]["caption"] == "Here it is"
    assert sent.body["document"]["filename"] == "brochure.pdf"
    assert graph.media[sent.body["document"]["id"]].content == BROCHURE
    slack.wait_for(lambda: "white_check_mark" in slack.reactions(CHANNEL, ts))
    assert slack.ephemerals == []  # nothing to tell the rep: the file went


def test_a_file_in_a_note_never_reaches_the_lead(app: AppProcess, slack: SlackStandIn, graph: GraphStandIn):
    lead_writes(app, "what did the lawyer say?", message_id="wamid.note-file")
    slack.wait_for(lambda: len(thread(slack)) == 1)
    card_ts = card_of(slack)["ts"]
    memo = slack.add_file("U0ANA", "internal-memo.pdf", "application/pdf", b"%PDF-1.4 internal")
    ts = slack.post_file_as_user(CHANNEL, "U0ANA", "note: the lawyer's memo", [memo], thread_ts=card_ts)
    event = {
        **message_event(user="U0ANA", text="note: the lawyer's memo", ts=ts, thread_ts=card_ts),
        "subtype": "file_share",
        "files": [memo],
    }
    assert app.slack_event(event).status_code == 200

    slack.wait_for(lambda: "lock" in slack.reactions(CHANNEL, ts))  # stored as a note
    assert graph.sent == [] and graph.uploaded() == [] and slack.downloads == []
