"""The LinkedIn adapter on its own: Unipile's webhooks verified and read, sends and their failures mapped
to core's kinds, files fetched — Unipile faked at the HTTP boundary (an injected transport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from channels.linkedin import PATH, LinkedInChannel, parse_webhook, verify_secret
from channels.linkedin.adapter import load
from channels.linkedin.settings import LinkedInSettings
from core.errors import ChannelBroken, Deferred, MalformedDelivery, PermanentDelivery, RetryableDelivery
from core.ports import (
    AccountHealth,
    ChannelOff,
    Outbound,
    OutboundFile,
    Reply,
    Template,
    Verified,
    WebhookRequest,
)
from tests.standins.unipile import account_status, attendee, message_webhook, raw

ACCOUNT, OWN = "acc-Threadline", "ACoOURS"
LEAD = attendee("ACoLEAD", "Jane Doe")
US = attendee(OWN, "Ana Lima")


def settings(**overrides: Any) -> LinkedInSettings:
    values: dict[str, Any] = {
        "UNIPILE_API_URL": "https://api8.unipile.com:13851/api/v1/",
        "UNIPILE_API_KEY": SecretStr("key-1"),
        "UNIPILE_ACCOUNT_ID": ACCOUNT,
        "UNIPILE_WEBHOOK_SECRET": SecretStr("hook-secret"),
    }
    return LinkedInSettings.model_construct(**{**values, **overrides})


def channel(handler: Callable[[httpx.Request], httpx.Response] | None = None) -> LinkedInChannel:
    def refuse_calls(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected call {request.method} {request.url}")

    client = httpx.Client(transport=httpx.MockTransport(handler or refuse_calls))
    built = LinkedInChannel(settings(), client=client)
    built.unipile.api_url = "https://api8.unipile.com:13851/api/v1"
    return built


def webhook(body: bytes, headers: dict[str, str]) -> Reply | Verified:
    request = WebhookRequest("POST", PATH, {}, headers, body)
    (route,) = channel().webhooks()
    return route.verify(request)


def parse(payload: dict[str, Any], own: Callable[[], str] = lambda: OWN) -> Any:
    return parse_webhook(raw(payload), account_id=ACCOUNT, own_id=own)


def lead_message(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "account_id": ACCOUNT,
        "chat_id": "chat-1",
        "message_id": "msg-1",
        "text": "Hi! Is the Pro plan still on sale?",
        "sender": LEAD,
        "attendees": [US],
    }
    return message_webhook(**{**values, **overrides})


# --- settings ------------------------------------------------------------------------------------------


def test_the_channel_is_off_unset_and_misconfigured_half_set(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("THREADLINE_ENV_FILE", "")
    for name in ("UNIPILE_API_URL", "UNIPILE_API_KEY", "UNIPILE_ACCOUNT_ID", "UNIPILE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    off = load()
    assert isinstance(off, ChannelOff) and not off.misconfigured

    monkeypatch.setenv("UNIPILE_API_URL", "https://api8.unipile.com:13851/api/v1")
    monkeypatch.setenv("UNIPILE_API_KEY", "key")
    half = load()
    assert isinstance(half, ChannelOff) and half.misconfigured
    assert "UNIPILE_ACCOUNT_ID" in half.reason and "UNIPILE_WEBHOOK_SECRET" in half.reason

    monkeypatch.setenv("UNIPILE_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("UNIPILE_WEBHOOK_SECRET", "s")
    assert isinstance(load(), LinkedInChannel)


# --- verification --------------------------------------------------------------------------------------


def test_the_shared_secret_is_required_and_compared_whatever_its_bytes():
    assert verify_secret("hook-secret", "hook-secret")
    assert not verify_secret("hook-secret", "hook-secreT")
    assert not verify_secret("hook-secret", None) and not verify_secret("hook-secret", "")
    assert not verify_secret("hook-secret", "hook-secret\u00e9")
    assert not verify_secret("", "")  # no secret configured: nothing passes


def test_a_webhook_with_a_wrong_or_missing_secret_is_401_and_a_malformed_one_400():
    body = raw(lead_message())
    assert isinstance(webhook(body, {"X-Unipile-Secret": "hook-secret"}), Verified)
    for headers in ({}, {"X-Unipile-Secret": "nope"}):
        refused = webhook(body, headers)
        assert isinstance(refused, Reply) and refused.status == 401
    for bad in (b"{not json", b"[1, 2]", b'{"hello": "world"}', b'{"event": "message_received"}'):
        refused = webhook(bad, {"X-Unipile-Secret": "hook-secret"})
        assert isinstance(refused, Reply) and refused.status == 400, bad


def test_a_message_is_kept_under_unipiles_id_and_account_statuses_each_time():
    first = webhook(raw(lead_message()), {"X-Unipile-Secret": "hook-secret"})
    again = webhook(raw(lead_message()), {"X-Unipile-Secret": "hook-secret"})
    assert isinstance(first, Verified) and isinstance(again, Verified) and first.key == again.key
    broken = raw(account_status(ACCOUNT, "CREDENTIALS"))
    one, two = (webhook(broken, {"X-Unipile-Secret": "hook-secret"}) for _ in range(2))
    assert isinstance(one, Verified) and isinstance(two, Verified) and one.key != two.key


# --- messages in ---------------------------------------------------------------------------------------


def test_a_leads_message_becomes_an_inbound_of_the_chat_with_their_profile():
    (message,) = parse(lead_message()).messages

    assert (message.channel, message.channel_account, message.provider_thread_id) == (
        "linkedin",
        ACCOUNT,
        "chat-1",
    )
    assert message.provider_message_id == "msg-1" and not message.from_us
    assert message.text == "Hi! Is the Pro plan still on sale?" and message.kind == "text"
    assert message.sender.provider_id == "ACoLEAD" and message.sender.name == "Jane Doe"
    assert message.sender.profile_url == "https://www.linkedin.com/in/ACoLEAD/"
    assert message.sent_at == datetime(2026, 12, 3, 9, 15, 7, 965000, tzinfo=UTC)


def test_files_are_attachments_fetched_through_unipiles_download_endpoint():
    files = [
        {"id": "att-1", "type": "img", "mimetype": "image/jpeg", "url": "att://x", "unavailable": False},
        {
            "id": "att-2",
            "type": "file",
            "mimetype": "application/pdf",
            "file_name": "quote.pdf",
            "file_size": 2048,
        },
        {"id": "att-3", "type": "video", "mimetype": "video/mp4", "unavailable": True},
    ]
    (message,) = parse(lead_message(text="", attachments=files)).messages

    assert [(a["kind"], a["name"], a["mime_type"]) for a in message.attachments] == [
        ("image", "image.jpeg", "image/jpeg"),
        ("document", "quote.pdf", "application/pdf"),
    ]
    assert message.attachments[0]["ref"]["message_id"] == "msg-1"
    assert (
        message.attachments[1]["ref"]["attachment_id"] == "att-2" and message.attachments[1]["size"] == 2048
    )
    assert message.kind == "image"
    assert "[image]" in message.text and "[document: quote.pdf]" in message.text
    assert "no longer available" in message.text  # never silence

    def download(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET" and request.headers["X-API-KEY"] == "key-1"
        assert request.url.path == "/api/v1/messages/msg-1/attachments/att-2"
        return httpx.Response(200, content=b"%PDF-1.7", headers={"Content-Type": "application/pdf"})

    fetched = channel(download).fetch_file(message.attachments[1]["ref"])
    assert (fetched.name, fetched.mime_type, fetched.content) == ("quote.pdf", "application/pdf", b"%PDF-1.7")


def test_a_single_attachment_object_is_read_as_unipiles_example_sends_it():
    one = {"id": "att-9", "type": "img", "mimetype": "image/png", "url": "att://y"}
    payload = lead_message(text="look")
    payload["attachments"] = one
    (message,) = parse(payload).messages
    assert [a["name"] for a in message.attachments] == ["image.png"] and message.text == "look"


def test_our_own_message_is_from_us_with_the_lead_as_the_other_party():
    by_flag = parse(lead_message(sender=US, attendees=[LEAD], is_sender=True)).messages[0]
    by_id = parse(lead_message(sender=US, attendees=[US, LEAD])).messages[0]

    for message in (by_flag, by_id):
        assert message.from_us
        assert message.sender.provider_id == "ACoLEAD" and message.sender.name == "Jane Doe"


def test_our_own_id_is_asked_only_when_the_payload_does_not_say(monkeypatch: pytest.MonkeyPatch):
    def never() -> str:
        raise AssertionError("Unipile asked although the payload said")

    assert parse(lead_message(sender=US, is_sender=True), own=never).messages[0].from_us
    with_info = lead_message(sender=US)
    with_info["account_info"] = {"type": "LINKEDIN", "user_id": OWN}
    assert parse(with_info, own=never).messages[0].from_us


def test_our_account_id_is_learnt_from_unipile_once_and_waits_while_unipile_is_away():
    calls: list[str] = []
    up = {"yes": False}

    def accounts(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        assert request.headers["X-API-KEY"] == "key-1"
        if not up["yes"]:
            return httpx.Response(503, json={"type": "errors/service_unavailable", "title": "Down"})
        return httpx.Response(200, json={"object": "Account", "connection_params": {"im": {"id": OWN}}})

    linkedin = channel(accounts)
    with pytest.raises(Deferred):
        linkedin.parse(raw(lead_message(sender=US, attendees=[LEAD])))
    up["yes"] = True
    assert linkedin.parse(raw(lead_message(sender=US, attendees=[LEAD]))).messages[0].from_us
    assert not linkedin.parse(raw(lead_message(message_id="msg-2"))).messages[0].from_us
    assert calls == ["/api/v1/accounts/acc-Threadline"] * 2  # cached once known


def test_events_of_other_accounts_and_other_kinds_are_left_alone():
    assert parse(lead_message(account_id="someone-else")).messages == []
    reaction = lead_message()
    reaction["event"] = "message_reaction"
    assert parse(reaction).messages == []
    assert parse(account_status("someone-else", "CREDENTIALS")).health == []


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({**lead_message(), "message": 42}, "message"),
        ({**lead_message(), "chat_id": None}, "chat_id"),
        ({**lead_message(), "sender": "Jane"}, "object"),
        ({**lead_message(), "timestamp": "yesterday"}, "Invalid isoformat"),
        ({**lead_message(), "timestamp": "2026-12-03T09:15:07"}, "time zone"),
        ({**lead_message(), "attachments": [{"type": "img"}]}, "id"),
    ],
)
def test_a_message_of_an_unexpected_shape_is_malformed_never_a_none_in_a_thread(payload: Any, why: str):
    with pytest.raises(MalformedDelivery, match=why):
        parse(payload)


# --- account status ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "ok"),
    [
        ("OK", True),
        ("RECONNECTED", True),
        ("CREATION_SUCCESS", True),
        ("SYNC_SUCCESS", True),
        ("CREDENTIALS", False),
        ("ERROR", False),
        ("STOPPED", False),
        ("DELETED", False),
    ],
)
def test_account_status_says_healthy_or_broken_with_a_reason_to_act_on(status: str, ok: bool):
    (health,) = parse(account_status(ACCOUNT, status)).health
    assert isinstance(health, AccountHealth)
    assert (health.channel, health.account, health.ok) == ("linkedin", ACCOUNT, ok)
    assert (health.reason is None) == ok
    if not ok:
        assert status in (health.reason or "") and "Unipile" in (health.reason or "")


def test_a_passing_or_unknown_account_status_changes_nothing():
    assert parse(account_status(ACCOUNT, "CONNECTING")).health == []
    assert parse(account_status(ACCOUNT, "SOMETHING_NEW")).health == []


# --- sending -------------------------------------------------------------------------------------------


def outbound(text: str = "Hello Jane", **overrides: Any) -> Outbound:
    values: dict[str, Any] = {
        "message_id": 7,
        "channel": "linkedin",
        "channel_account": ACCOUNT,
        "to": "chat/1",
        "text": text,
    }
    return Outbound(**{**values, **overrides})


def test_a_reply_is_posted_to_the_chat_as_multipart_text_and_attachments():
    seen: list[httpx.Request] = []

    def send(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"object": "MessageSent", "message_id": "sent-1"})

    receipt = channel(send).send(outbound(files=(OutboundFile("quote.pdf", "application/pdf", b"%PDF"),)))

    assert receipt.provider_message_id == "sent-1"
    (request,) = seen
    assert request.method == "POST" and request.url.raw_path == b"/api/v1/chats/chat%2F1/messages"
    assert request.headers["X-API-KEY"] == "key-1"
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    body = request.read()
    assert b'name="text"\r\n\r\nHello Jane' in body
    assert b'name="attachments"; filename="quote.pdf"' in body and b"%PDF" in body


def test_text_alone_still_goes_as_multipart():
    def send(request: httpx.Request) -> httpx.Response:
        assert request.headers["Content-Type"].startswith("multipart/form-data")
        return httpx.Response(201, json={"object": "MessageSent", "message_id": "sent-2"})

    assert channel(send).send(outbound()).provider_message_id == "sent-2"


def test_nothing_to_send_or_a_template_is_refused_before_asking_unipile():
    with pytest.raises(PermanentDelivery, match="empty"):
        channel().send(outbound(text="  "))
    with pytest.raises(PermanentDelivery, match="template"):
        channel().send(outbound(template=Template("follow_up", "en_US")))


def answering(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> LinkedInChannel:
    return channel(lambda request: httpx.Response(status, json=body, headers=headers))


@pytest.mark.parametrize(
    ("status", "body", "kind", "said"),
    [
        (
            429,
            {"type": "errors/too_many_requests", "title": "Too many requests"},
            RetryableDelivery,
            "Too many",
        ),
        (
            500,
            {"type": "errors/unexpected_error", "title": "Unexpected error"},
            RetryableDelivery,
            "Unexpected",
        ),
        (503, {"type": "errors/provider_error", "title": "Provider error"}, RetryableDelivery, "Provider"),
        (
            400,
            {"type": "errors/invalid_parameters", "title": "Invalid parameters", "detail": "text too long"},
            PermanentDelivery,
            "text too long",
        ),
        (
            422,
            {"type": "errors/no_connection_with_recipient", "title": "Recipient not reachable"},
            PermanentDelivery,
            "Recipient not reachable",
        ),
        (
            404,
            {"type": "errors/resource_not_found", "title": "Resource not found"},
            PermanentDelivery,
            "chat",
        ),
        (
            401,
            {"type": "errors/missing_credentials", "title": "Unauthorized"},
            ChannelBroken,
            "UNIPILE_API_KEY",
        ),
        (401, {"type": "errors/disconnected_account", "title": "Disconnected"}, ChannelBroken, "reconnect"),
        (403, {"type": "errors/insufficient_permissions", "title": "Forbidden"}, ChannelBroken, "Forbidden"),
        (
            400,
            {"type": "errors/disconnected_account", "title": "Disconnected account"},
            ChannelBroken,
            "reconnect",
        ),
    ],
)
def test_unipiles_refusals_become_retry_fail_with_reason_or_channel_broken(
    status: int, body: dict[str, Any], kind: type[Exception], said: str
):
    with pytest.raises(kind, match=said):
        answering(status, body).send(outbound())


def test_a_rate_limit_says_when_to_try_again():
    with pytest.raises(RetryableDelivery) as raised:
        answering(429, {"type": "errors/too_many_requests"}, {"Retry-After": "30"}).send(outbound())
    assert raised.value.retry_after == 30.0


def test_unreachable_is_retried_but_a_lost_answer_is_never_sent_blind_again():
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def silent(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    def upload_cut(request: httpx.Request) -> httpx.Response:
        raise httpx.WriteTimeout("upload stalled", request=request)

    with pytest.raises(RetryableDelivery):
        channel(unreachable).send(outbound())
    with pytest.raises(RetryableDelivery):  # Unipile never had the whole request
        channel(upload_cut).send(outbound())
    with pytest.raises(PermanentDelivery, match="may or may not") as raised:
        channel(silent).send(outbound())
    assert raised.value.code == "unknown_outcome"


def test_an_answer_without_json_is_a_reason_not_a_crash():
    refused = channel(lambda request: httpx.Response(502, text="<html>Bad gateway</html>"))
    with pytest.raises(RetryableDelivery, match="HTTP 502"):
        refused.send(outbound())


def test_check_says_whether_unipile_knows_our_account_and_its_state():
    def account(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"object": "Account", "name": "Ana Lima", "sources": [{"id": "s", "status": "CREDENTIALS"}]},
        )

    (line,) = channel(account).health()
    assert line.state == "fail" and "CREDENTIALS" in line.detail
    ok = channel(lambda r: httpx.Response(200, json={"name": "Ana Lima", "sources": [{"status": "OK"}]}))
    assert [line.state for line in ok.health()] == ["ok", "ok"]
    bad_key = answering(401, {"type": "errors/missing_credentials", "title": "Unauthorized"})
    assert "UNIPILE_API_KEY" in bad_key.health()[0].detail
    assert json.dumps([h.detail for h in bad_key.health()]).count("key-1") == 0  # the key is never said
