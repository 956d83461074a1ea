"""Whatever the bytes, every endpoint answers without a 5xx, and a refused request changes nothing.

Property-based (hypothesis) against the real app over HTTP, on both runtimes: unsigned and wrongly
signed requests get 401/403; signed but malformed ones 400; payloads whose values have the wrong type
anywhere (null, objects, huge numbers, NUL bytes, lone surrogates…) are refused or stored, never a 500,
never a traceback in the log (the app fixture's teardown reads it). THREADLINE_FUZZ_EXAMPLES sets the
cases per property (default 120: a few thousand in all); raise it for a longer run on demand.
LinkedIn's webhook (Unipile's shared secret) is configured against the strict Unipile stand-in.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from channels.sandbox.client import SIGNATURE_HEADER, Contact, sandbox_key, sign, signed_message
from core.db import Database
from core.models import (
    ChannelAccount,
    Conversation,
    Event,
    Inbox,
    InboxStatus,
    Lead,
    LeadIdentity,
    Message,
    ProcessedEvent,
    Tag,
)
from tests.e2e.conftest import (
    RUNTIMES,
    app_environment,
    running_app,
    running_graph,
    running_slack,
    runtime_environment,
)
from tests.e2e.harness import (
    CHANNEL,
    PHONE_NUMBER_ID,
    SIGNING_SECRET,
    TEAM,
    WHATSAPP_SECRET,
    WHATSAPP_VERIFY,
    AppProcess,
    block_action,
    interaction,
    message_event,
)
from tests.standins import meta_webhooks as meta
from tests.standins.slack_api import SlackStandIn
from tests.standins.unipile import UnipileStandIn, account_status, attendee, message_webhook

# What an HTTP client can put in a header: visible ASCII and raw high bytes (UTF-8 arrives as such).
HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=30
).map(lambda t: t.encode("latin-1")) | st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=10
).map(lambda t: t.encode("utf-8").strip() or b"x")
EXAMPLES = int(os.environ.get("THREADLINE_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
TABLES = (
    Inbox,  # the first thing an accepted delivery writes
    ChannelAccount,
    Message,
    Conversation,
    Lead,
    LeadIdentity,
    ProcessedEvent,
    Event,
    Tag,
)  # read once the inbox is idle


class Target:
    """The running app, the stand-ins, one open conversation to aim at, and a way to read its state."""

    def __init__(self, app: AppProcess, slack: SlackStandIn, db: Database, card_ts: str) -> None:
        self.app, self.slack, self.db, self.card_ts = app, slack, db, card_ts
        self.http = httpx.Client(base_url=app.url, timeout=30)

    def state(self) -> tuple[int, ...]:
        """What the app holds, once it has processed every delivery it accepted so far."""
        deadline = time.monotonic() + 30
        while self._inbox_busy() and time.monotonic() < deadline:
            time.sleep(0.02)  # polling for the inbox runner to finish, not waiting a fixed time
        with self.db.sessions() as session:
            return tuple(session.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES)

    def _inbox_busy(self) -> bool:
        with self.db.sessions() as session:
            busy = select(func.count()).where(Inbox.status.in_([InboxStatus.NEW, InboxStatus.RUNNING]))
            return bool(session.scalar(busy))

    def post(self, path: str, body: bytes, headers: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, content=body, headers=headers)

    def signed_slack(self, body: bytes, content_type: str, *, timestamp: str | None = None) -> httpx.Response:
        ts = timestamp or str(int(time.time()))
        digest = hmac.new(
            SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256
        ).hexdigest()
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": f"v0={digest}",
        }
        return self.post("/slack/events", body, headers)


UNIPILE_KEY = "unipile-api-key-for-fuzzing"
UNIPILE_SECRET = "unipile-webhook-secret-for-fuzzing"
UNIPILE_ACCOUNT = "acc-fuzz"
UNIPILE_OWN = "ACoAAOURSELVES"


# PostgreSQL is the stricter store (it refuses a NUL in text, SQLite keeps it): hostile input runs
# there; THREADLINE_E2E_ALL_RUNTIMES=1 adds the embedded runtime.
@pytest.fixture(
    scope="module", params=RUNTIMES if os.environ.get("THREADLINE_E2E_ALL_RUNTIMES") else ["celery-postgres"]
)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp: Path = tmp_path_factory.mktemp(request.param)
    unipile = UnipileStandIn(api_key=UNIPILE_KEY, account_id=UNIPILE_ACCOUNT, own_provider_id=UNIPILE_OWN)
    unipile.start()
    unipile.add_chat("chat-fuzz")
    with running_slack() as slack, running_graph() as graph:
        env = app_environment(runtime_environment(request, request.param, tmp), slack, graph, tmp)
        env |= {
            "UNIPILE_API_URL": unipile.base_url,
            "UNIPILE_API_KEY": UNIPILE_KEY,
            "UNIPILE_ACCOUNT_ID": UNIPILE_ACCOUNT,
            "UNIPILE_WEBHOOK_SECRET": UNIPILE_SECRET,
        }
        with running_app(env, tmp / "threadline.log") as app:
            payload = meta.text_message(
                wa_id="15550009999",
                name="Target",
                text="hi",
                message_id="wamid.target",
                phone_number_id=PHONE_NUMBER_ID,
            )
            assert app.whatsapp(payload).status_code == 200
            slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1)
            db = Database(env["DATABASE_URL"])
            target = Target(app, slack, db, slack.messages(CHANNEL)[0]["ts"])
            try:
                yield target
            finally:
                target.http.close()
                db.dispose()
        logs = app.logs()
        assert UNIPILE_KEY not in logs and UNIPILE_SECRET not in logs, "a Unipile secret in the logs"
    unipile.stop()
    assert unipile.violations == [], "the app made calls Unipile's API does not allow"


# --- what hostile values look like --------------------------------------------------------------------

ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "None",
        "null",
        "\x00",
        "a\x00b",
        "\ud800",
        "é",
        "<!channel>",
        "9" * 40,
        "x" * 5000,
        "1e999",
        "-1",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | ODD_TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, original: dict[str, Any]) -> dict[str, Any]:
    """`original` with one value anywhere replaced by a hostile one (or its key removed)."""
    payload = copy.deepcopy(original)
    path = draw(st.sampled_from(paths(payload)))
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON_VALUES)
    return payload


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # Infinity and lone surrogates included, as json allows


def refused_or_accepted(target: Target, response: httpx.Response, before: tuple[int, ...]) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert target.state() == before, "a refused request changed something"


# --- WhatsApp --------------------------------------------------------------------------------------------

WHATSAPP_MESSAGE = meta.text_message(
    wa_id="15550001111", name="Fuzz", text="hello", message_id="wamid.fuzz", phone_number_id=PHONE_NUMBER_ID
)


@FUZZ
@given(body=st.binary(max_size=300), signature=st.none() | HEADER_TEXT)
def test_whatsapp_refuses_what_meta_did_not_sign(target: Target, body: bytes, signature: bytes | None):
    before = target.state()
    headers: dict[str, Any] = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    response = target.post("/webhooks/whatsapp", body, headers)
    assert response.status_code == 401 and target.state() == before


@FUZZ
@given(data=st.data())
def test_whatsapp_signed_payloads_with_wrong_types_anywhere(target: Target, data: st.DataObject):
    payload = data.draw(mutated(WHATSAPP_MESSAGE) | JSON_VALUES)
    raw = dumps(payload)
    before = target.state()
    response = target.post(
        "/webhooks/whatsapp",
        raw,
        {"Content-Type": "application/json", "X-Hub-Signature-256": meta.sign(WHATSAPP_SECRET, raw)},
    )
    refused_or_accepted(target, response, before)


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge", "x"]), st.text(max_size=30)
    )
)
def test_whatsapp_handshake_answers_only_the_right_token(target: Target, query: dict[str, str]):
    response = target.http.get("/webhooks/whatsapp", params=query)
    right = query.get("hub.mode") == "subscribe" and query.get("hub.verify_token") == WHATSAPP_VERIFY
    assert response.status_code == (200 if right else 403)


# --- LinkedIn (Unipile) ------------------------------------------------------------------------------

LINKEDIN_MESSAGE = message_webhook(
    account_id=UNIPILE_ACCOUNT,
    chat_id="chat-fuzz",
    message_id="msg-fuzz",
    text="hello",
    sender=attendee("ACoAAFUZZLEAD", "Fuzz Lead"),
    attendees=[attendee(UNIPILE_OWN, "Ana Lima")],
    attachments=[{"id": "att-1", "type": "img", "mimetype": "image/png", "size": 3, "file_name": "a.png"}],
)
LINKEDIN_STATUS = account_status(UNIPILE_ACCOUNT, "CREDENTIALS")


def linkedin(target: Target, body: bytes, secret: bytes | str | None) -> httpx.Response:
    headers: dict[str, Any] = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Unipile-Secret"] = secret
    return target.post("/webhooks/linkedin", body, headers)


# A quarter of the cases: the edge these reach is the one the WhatsApp properties above already press
# on (CI time); THREADLINE_FUZZ_EXAMPLES raises them with the rest.
LINKEDIN_FUZZ = settings(FUZZ, max_examples=max(EXAMPLES // 4, 1))
NEAR_SECRETS = st.sampled_from(
    [
        "",
        UNIPILE_SECRET[:-1],
        UNIPILE_SECRET + "x",
        UNIPILE_SECRET.upper(),
        "Bearer " + UNIPILE_SECRET,
        "null",
    ]
)


@LINKEDIN_FUZZ
@given(
    body=st.binary(max_size=300) | st.sampled_from([LINKEDIN_MESSAGE, LINKEDIN_STATUS]).map(dumps),
    secret=st.none() | HEADER_TEXT | NEAR_SECRETS,
)
def test_linkedin_refuses_what_unipile_did_not_send(target: Target, body: bytes, secret: bytes | str | None):
    before = target.state()
    response = linkedin(target, body, secret)
    assert response.status_code == 401 and target.state() == before


@LINKEDIN_FUZZ
@given(data=st.data())
def test_linkedin_payloads_with_wrong_types_anywhere(target: Target, data: st.DataObject):
    payload = data.draw(mutated(LINKEDIN_MESSAGE) | mutated(LINKEDIN_STATUS) | JSON_VALUES)
    before = target.state()
    refused_or_accepted(target, linkedin(target, dumps(payload), UNIPILE_SECRET), before)


def test_linkedin_huge_and_broken_bodies_are_refused_or_kept_never_a_500(target: Target):
    whole = dumps(LINKEDIN_MESSAGE)
    bodies = [
        whole[: len(whole) // 2],  # cut off
        whole + b"}",
        b"\xff\xfe" + whole,
        b"[" * 200_000 + b"]" * 200_000,  # deeper than any reader goes
        dumps({**LINKEDIN_MESSAGE, "message": "x" * 2_000_000}),  # over the 1 MB a webhook may be
        dumps({**LINKEDIN_MESSAGE, "message_id": "deep", "message": [[[[[[]]]]]] * 1000}),
    ]
    for body in bodies:
        before = target.state()
        response = linkedin(target, body, UNIPILE_SECRET)
        refused_or_accepted(target, response, before)
    assert linkedin(target, bodies[4], UNIPILE_SECRET).status_code == 413


# --- the sandbox ----------------------------------------------------------------------------------------

SANDBOX_BODY, _ = signed_message(Contact("Fuzz", "fuzz@example.com"), "hello", signing_secret=SIGNING_SECRET)


@FUZZ
@given(data=st.data(), signed=st.booleans())
def test_sandbox_refuses_unsigned_and_malformed_messages(target: Target, data: st.DataObject, signed: bool):
    payload = data.draw(mutated(json.loads(SANDBOX_BODY)) | JSON_VALUES)
    raw = dumps(payload)
    signature = sign(sandbox_key(SIGNING_SECRET), raw) if signed else "sha256=" + "0" * 64
    before = target.state()
    response = target.post(
        "/webhooks/sandbox", raw, {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
    )
    if not signed:
        assert response.status_code == 401
    refused_or_accepted(target, response, before)


# --- Slack -----------------------------------------------------------------------------------------------


@FUZZ
@given(body=st.binary(max_size=200), timestamp=st.none() | HEADER_TEXT, signature=st.none() | HEADER_TEXT)
def test_slack_refuses_what_slack_did_not_sign(
    target: Target, body: bytes, timestamp: str | None, signature: str | None
):
    headers = {"Content-Type": "application/json"}
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = timestamp
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    before = target.state()
    response = target.post("/slack/events", body, headers)
    assert response.status_code == 401 and target.state() == before


@FUZZ
@given(
    body=st.binary(max_size=200) | JSON_VALUES.map(dumps),
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]),
)
def test_slack_signed_bodies_that_are_not_slack_payloads(target: Target, body: bytes, content_type: str):
    before = target.state()
    refused_or_accepted(target, target.signed_slack(body, content_type), before)


def _thread_event(target: Target) -> dict[str, Any]:
    event = message_event(
        user="U0ANA", text="<!here> fuzz note", ts="1700000999.000001", thread_ts=target.card_ts
    )
    return {
        "token": "legacy",
        "team_id": TEAM,
        "api_app_id": "A0THREADLINE",
        "event": event,
        "type": "event_callback",
        "event_id": "Ev0FUZZ",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": "U0BOT", "is_bot": True}],
    }


@FUZZ
@given(data=st.data())
def test_slack_events_with_wrong_types_anywhere(target: Target, data: st.DataObject):
    payload = data.draw(mutated(_thread_event(target)))
    before = target.state()
    refused_or_accepted(target, target.signed_slack(dumps(payload), "application/json"), before)


def _interactions(target: Target) -> list[dict[str, Any]]:
    click = block_action(
        user="U0ANA",
        card_ts=target.card_ts,
        action={
            "type": "button",
            "action_id": "conversation.view_lead",
            "block_id": "card.actions",
            "value": "1",
        },
        trigger_id="1.2.fuzz",
    )
    submit = {
        **interaction("view_submission", "U0ANA"),
        "trigger_id": "1.2.fuzz",
        "view": {
            "id": "V0FUZZ",
            "team_id": TEAM,
            "type": "modal",
            "callback_id": "tags.modal",
            "private_metadata": "1",
            "state": {
                "values": {"tags.new": {"tags.new.input": {"type": "plain_text_input", "value": "fuzz"}}}
            },
        },
    }
    # The AI's buttons and the correction modal (ids 1: no AI decision, no knowledge entry there).
    ai_clicks = [
        {**click, "actions": [{**click["actions"][0], "action_id": action_id, "block_id": block_id}]}
        for action_id, block_id in (
            ("ai.why", "ai.feedback"),
            ("ai.why_decision", "ai.handoff"),
            ("ai.feedback.down", "ai.feedback"),
            ("knowledge.approve", "knowledge.review"),
        )
    ]
    correction = {
        **submit,
        "view": {
            **submit["view"],
            "callback_id": "ai.correction.modal",
            "state": {
                "values": {
                    "ai.correction": {"ai.correction.input": {"type": "plain_text_input", "value": "x"}}
                }
            },
        },
    }
    return [click, submit, *ai_clicks, correction]


@FUZZ
@given(data=st.data())
def test_slack_interactions_with_wrong_types_anywhere(target: Target, data: st.DataObject):
    original = data.draw(st.sampled_from(_interactions(target)))
    payload = data.draw(mutated(original))
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    before = target.state()
    refused_or_accepted(target, target.signed_slack(body, "application/x-www-form-urlencoded"), before)


@pytest.mark.parametrize("odd", ["\x00", "C0\x00", "\ud800"], ids=["nul", "nul-inside", "lone-surrogate"])
def test_slack_ids_no_database_can_be_asked_about_are_a_400(target: Target, odd: str):
    # Found by the property above: a NUL in channel.id reached PostgreSQL and answered 500, with a traceback.
    for original in _interactions(target)[:3]:
        payload = copy.deepcopy(original)
        if payload["type"] == "block_actions":
            payload["channel"]["id"] = odd
        else:
            payload["user"]["id"] = odd
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        before = target.state()
        response = target.signed_slack(body, "application/x-www-form-urlencoded")
        assert response.status_code == 400 and target.state() == before


@FUZZ
@given(
    text=st.text(max_size=200),
    extra=st.dictionaries(
        st.sampled_from(["user_id", "channel_id", "team_id", "command"]), st.text(max_size=20)
    ),
)
def test_slash_command_text_of_any_kind_gets_an_answer(target: Target, text: str, extra: dict[str, str]):
    form = {
        "team_id": TEAM,
        "channel_id": CHANNEL,
        "user_id": "U0ANA",
        "command": "/leads",
        "text": text,
        **extra,
    }
    before = target.state()
    response = target.signed_slack(urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded")
    refused_or_accepted(target, response, before)


@FUZZ
@given(
    path=st.sampled_from(["/healthz", "/metrics", "/nope", "/webhooks/linkedin", "/slack/events"]),
    query=st.text(max_size=30),
)
def test_other_paths_and_methods_never_fail(target: Target, path: str, query: str):
    response = target.http.get(path, params={"q": query})
    assert response.status_code in {200, 404, 405}
