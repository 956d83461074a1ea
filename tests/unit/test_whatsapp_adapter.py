"""The WhatsApp adapter on Meta's own examples, and its error mapping at the HTTP boundary."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from channels.whatsapp import (
    WhatsAppSender,
    parse_webhook,
    split_text,
    verify_signature,
)
from core.errors import ChannelBroken, MalformedDelivery, PermanentDelivery, RetryableDelivery
from core.models import DeliveryStatus
from core.ports import Outbound
from tests.conftest import SPECS
from tests.standins import meta_webhooks as meta

SPEC = SPECS / "whatsapp" / "business-messaging-api_v23.0.yaml"
EXAMPLES = meta.spec_webhook_examples(SPEC)
MESSAGE_EXAMPLES = {
    name: payload
    for name, payload in EXAMPLES.items()
    if any(c.get("field") == "messages" for e in payload["entry"] for c in e["changes"])
}


@pytest.mark.parametrize("name", sorted(MESSAGE_EXAMPLES))
def test_every_spec_example_becomes_one_described_message(name: str):
    parsed = parse_webhook(MESSAGE_EXAMPLES[name])
    assert len(parsed.messages) == 1
    inbound = parsed.messages[0]
    assert inbound.channel == "whatsapp" and inbound.channel_account == "106540352242922"
    assert inbound.text.strip(), f"{name} would show as an empty thread entry"
    assert inbound.provider_thread_id == inbound.sender.provider_id == "16505551234"


def test_text_and_kinds_read_as_a_person_would():
    texts = {name: parse_webhook(p).messages[0].text for name, p in MESSAGE_EXAMPLES.items()}
    assert texts["Text Message"] == "Does it come in another color?"
    assert texts["Image Message"] == "[image] Taj Mahal"
    assert "Philz Coffee" in texts["Location Message"] and "location" in texts["Location Message"]
    assert "Lucía Gómez" in texts["Contact Sharing Message"]
    assert texts["Interactive List Reply Message"] == "Priority Mail Express"
    assert texts["Button Message"] == "Unsubscribe"
    assert "not supported" in texts["Unsupported Message"]
    reaction = parse_webhook(MESSAGE_EXAMPLES["Reaction Message"]).messages[0]
    assert reaction.kind == "reaction" and reaction.reply_to_provider_id.startswith("wamid.")


def test_group_and_account_updates_are_not_conversations():
    others = [p for n, p in EXAMPLES.items() if n not in MESSAGE_EXAMPLES]
    assert others and all(parse_webhook(p).messages == [] for p in others)


def test_statuses_and_batches():
    status = meta.status_update(message_id="wamid.X", recipient_id="1555", status="read", phone_number_id="P")
    failed = meta.status_update(
        message_id="wamid.Y",
        recipient_id="1555",
        status="failed",
        phone_number_id="P",
        errors=[
            {"code": 131026, "title": "Message undeliverable", "error_data": {"details": "Not on WhatsApp"}}
        ],
    )
    batch = meta.text_message(wa_id="1555", name="A", text="one", phone_number_id="P")
    value = batch["entry"][0]["changes"][0]["value"]
    value["messages"].append({**value["messages"][0], "id": "wamid.two", "text": {"body": "two"}})
    value["statuses"] = (
        status["entry"][0]["changes"][0]["value"]["statuses"]
        + failed["entry"][0]["changes"][0]["value"]["statuses"]
    )

    parsed = parse_webhook(batch)
    assert [m.text for m in parsed.messages] == ["one", "two"]
    assert [u.status for u in parsed.updates] == [DeliveryStatus.READ, DeliveryStatus.FAILED]
    assert parsed.updates[1].error == "131026: Message undeliverable — Not on WhatsApp"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"object": "page"},
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {}}]}]},
    ],
)
def test_malformed_payloads_are_refused(payload: object):
    with pytest.raises(MalformedDelivery):
        parse_webhook(payload)


def wrongly_typed(path: tuple[str, ...], value: object) -> dict[str, object]:
    payload = meta.text_message(wa_id="15550001", name="Ann", text="hi", phone_number_id="P")
    node: Any = payload["entry"][0]["changes"][0]["value"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("messages", 0, "from"), None),
        (("messages", 0, "from"), {"id": "1"}),
        (("messages", 0, "id"), ["wamid"]),
        (("messages", 0, "text", "body"), None),
        (("messages", 0, "timestamp"), "Infinity"),
        (("messages", 0, "timestamp"), "99999999999999999999"),
        (("messages", 0, "timestamp"), 1.5),
        (("metadata", "phone_number_id"), None),
        (("contacts", 0, "profile", "name"), {"first": "Ann"}),
        (("messages",), {"not": "a list"}),
    ],
    ids=lambda v: repr(v),
)
def test_a_wrong_type_inside_a_verified_payload_is_refused_not_turned_into_text(
    path: tuple[Any, ...], value: object
):
    with pytest.raises(MalformedDelivery):
        parse_webhook(wrongly_typed(path, value))


def test_json_nested_a_thousand_deep_is_refused_or_read_never_a_crash():
    deep = "[" * 1000 + "]" * 1000
    raw = (
        '{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": '
        '{"metadata": {"phone_number_id": "P"}, "messages": [' + deep + "]}}]}]}"
    ).encode()
    with pytest.raises(MalformedDelivery):
        parse_webhook(raw)


def test_signature():
    raw = b'{"a": 1}'
    assert verify_signature("s3cret", raw, meta.sign("s3cret", raw))
    assert not verify_signature("s3cret", raw, "sha256=é-not-hex")  # non-ASCII: wrong, not an error
    assert not verify_signature("s3cret", raw, meta.sign("other", raw))
    assert not verify_signature("s3cret", raw, None)
    assert not verify_signature("s3cret", raw, "sha1=abc")


def sender_with(handler) -> WhatsAppSender:  # type: ignore[no-untyped-def]
    return WhatsAppSender(
        api_url="https://graph.test/v23.0",
        phone_number_id="PN1",
        access_token="tok",
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


OUT = Outbound(message_id=1, channel="whatsapp", channel_account="PN1", to="15551234567", text="Hello")


def test_send_posts_the_documented_body():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"messaging_product": "whatsapp", "contacts": [], "messages": [{"id": "wamid.OK"}]}
        )

    assert sender_with(handler).send(OUT).provider_message_id == "wamid.OK"
    request = seen[0]
    assert str(request.url) == "https://graph.test/v23.0/PN1/messages"
    assert request.headers["Authorization"] == "Bearer tok"
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "15551234567",
        "type": "text",
        "text": {"preview_url": False, "body": "Hello"},
    }


def graph_error(code: int, status: int = 400, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {
        "error": {"message": "boom", "type": "OAuthException", "code": code, "error_data": {"details": "why"}}
    }
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("response", "kind", "words"),
    [
        (graph_error(131047), PermanentDelivery, "24 hours"),
        (graph_error(190, 401), ChannelBroken, "access token"),
        (graph_error(100), PermanentDelivery, "refused"),
        (graph_error(130429, 429, {"Retry-After": "7"}), RetryableDelivery, "boom"),
        (graph_error(131000, 500), RetryableDelivery, "boom"),
        (httpx.Response(502, text="bad gateway"), RetryableDelivery, "HTTP 502"),
    ],
)
def test_graph_errors_become_core_kinds(response: httpx.Response, kind: type[Exception], words: str):
    with pytest.raises(kind, match=words) as caught:
        sender_with(lambda request: response).send(OUT)
    if response.status_code == 429:
        assert caught.value.retry_after == 7  # type: ignore[attr-defined]


def test_network_failures_before_and_after_sending():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def silent(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    with pytest.raises(RetryableDelivery):
        sender_with(refuse).send(OUT)
    with pytest.raises(PermanentDelivery, match="may or may not"):
        sender_with(silent).send(OUT)


def test_long_text_is_split_at_word_breaks():
    text = " ".join(f"word{i}" for i in range(2000))
    parts = split_text(text)
    assert len(parts) > 1 and all(len(p) <= 4096 for p in parts)
    assert " ".join(parts).split() == text.split()


def test_one_malformed_message_does_not_cost_the_others_in_its_webhook():
    payload = meta.text_message(wa_id="1555", name="A", text="kept", phone_number_id="P")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"].insert(0, {**value["messages"][0], "id": None, "text": {"body": "broken"}})
    parsed = parse_webhook(payload)
    assert [m.text for m in parsed.messages] == ["kept"]
