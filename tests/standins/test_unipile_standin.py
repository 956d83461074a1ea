"""The Unipile stand-in refuses what Unipile refuses: a wrong call by the app must fail a test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.standins.unipile import UnipileStandIn

KEY, ACCOUNT = "key-1", "acc-1"


@pytest.fixture
def unipile() -> Iterator[UnipileStandIn]:
    with UnipileStandIn(api_key=KEY, account_id=ACCOUNT, own_provider_id="ACoUS") as standin:
        standin.add_chat("chat-1")
        yield standin


def send(
    unipile: UnipileStandIn, files: list[tuple[str, tuple[str | None, bytes | str, str | None]]], **kw: str
) -> httpx.Response:
    headers = {"X-API-KEY": kw.get("key", KEY)}
    return httpx.post(
        f"{unipile.base_url}/chats/{kw.get('chat', 'chat-1')}/messages", files=files, headers=headers
    )


def test_a_valid_send_is_kept_and_answered_with_a_message_id(unipile: UnipileStandIn):
    answer = send(
        unipile, [("text", (None, "Hello", None)), ("attachments", ("a.pdf", b"%PDF", "application/pdf"))]
    )

    assert answer.status_code == 201 and answer.json()["message_id"].startswith("unipile-msg-")
    (sent,) = unipile.sent
    assert (sent.text, [(f.name, f.mime_type, f.content) for f in sent.files]) == (
        "Hello",
        [("a.pdf", "application/pdf", b"%PDF")],
    )
    assert unipile.violations == []


def test_calls_unipile_does_not_allow_are_refused_and_recorded(unipile: UnipileStandIn):
    assert send(unipile, [("text", (None, "hi", None))], key="wrong").status_code == 401
    assert (
        send(unipile, [("text", (None, "hi", None)), ("account_id", (None, ACCOUNT, None))]).status_code
        == 400
    )
    assert send(unipile, [("attachments", (None, "not a file", None))]).status_code == 400
    assert send(unipile, [("thread_id", (None, "t", None))]).status_code == 400  # neither text nor files
    as_json = httpx.post(
        f"{unipile.base_url}/chats/chat-1/messages", json={"text": "hi"}, headers={"X-API-KEY": KEY}
    )
    assert as_json.status_code == 400
    assert httpx.delete(f"{unipile.base_url}/chats/chat-1", headers={"X-API-KEY": KEY}).status_code == 404
    assert len(unipile.violations) == 6 and unipile.sent == []


def test_provider_answers_are_not_violations(unipile: UnipileStandIn):
    assert send(unipile, [("text", (None, "hi", None))], chat="unknown-chat").status_code == 404
    unipile.fail_next(429, "errors/too_many_requests", "Too many requests")
    refused = send(unipile, [("text", (None, "hi", None))])
    assert refused.status_code == 429 and refused.json()["type"] == "errors/too_many_requests"
    account = httpx.get(f"{unipile.base_url}/accounts/{ACCOUNT}", headers={"X-API-KEY": KEY}).json()
    assert account["connection_params"]["im"]["id"] == "ACoUS"
    assert unipile.violations == []
