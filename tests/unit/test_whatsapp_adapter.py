"""The WhatsApp adapter on Meta's own examples, and its error mapping at the HTTP boundary."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from channels.whatsapp import (
    WhatsAppSender,
    parse_webhook,
    split_text,
    verify_signature,
)
from channels.whatsapp.adapter import WhatsAppChannel
from channels.whatsapp.settings import WhatsAppSettings, parse_templates
from core.errors import (
    ChannelBroken,
    DeliveryError,
    MalformedDelivery,
    NeedsTemplate,
    PermanentDelivery,
    RetryableDelivery,
    SettingsError,
)
from core.models import DeliveryStatus
from core.ports import Outbound, Template
from tests.conftest import SPECS
from tests.standins import meta_webhooks as meta
from tests.standins.graph_api import GraphStandIn

SPEC = SPECS / "whatsapp" / "business-messaging-api_v23.0.yaml"
EXAMPLES = meta.spec_webhook_examples(SPEC)
GRAPH = GraphStandIn(SPEC, access_token="tok", phone_number_id="PN1")  # only its spec check is used
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
    assert texts["Location Message"] == (
        "[location] Philz Coffee — 101 Forest Ave, Palo Alto, CA 94301\n"
        "https://www.google.com/maps/search/?api=1&query=37.44221496582,-122.16165924072\n"
        "https://philzcoffee.com/"
    )
    assert texts["Contact Sharing Message"] == (
        "[contact card] Lucía Gómez (Google) — phone: +1 (983) 555-2319"
    )
    assert (
        texts["Interactive List Reply Message"] == "[list reply] Priority Mail Express — Next Day to 2 Days"
    )
    assert texts["Interactive Button Reply Message"] == "[button reply] Cancel"
    assert texts["Button Message"] == "[quick reply] Unsubscribe"
    assert texts["Order Message"] == "[order] 2 items\n• 2 × di9ozbzfi4 at 30 USD\n• 1 × nqryix03ez at 25 USD"
    assert texts["System Message"] == "[system] User Sheena Nelson changed from 16505551234 to 12195555358"
    assert texts["Unsupported Message"] == (
        "[unsupported] The lead sent a message WhatsApp does not support; it cannot be shown here. "
        "(WhatsApp: Message type is currently not supported.)"
    )
    assert texts["Text Message with Context (Product Inquiry)"] == (
        "[asking about product di9ozbzfi4]\nIs this still available?"
    )
    reaction = parse_webhook(MESSAGE_EXAMPLES["Reaction Message"]).messages[0]
    assert reaction.kind == "reaction" and reaction.text == "👍"
    assert reaction.reply_to_provider_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA"


def test_a_reply_names_the_message_it_answers():
    button = parse_webhook(MESSAGE_EXAMPLES["Interactive Button Reply Message"]).messages[0]
    assert button.reply_to_provider_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MEM2RUJFNkI0RENGQTVDRjUA"
    assert parse_webhook(MESSAGE_EXAMPLES["Text Message"]).messages[0].reply_to_provider_id is None


def test_a_click_to_whatsapp_ad_is_the_campaign_and_shows_in_the_entry():
    inbound = parse_webhook(MESSAGE_EXAMPLES["Text Message from Click to WhatsApp Ad"]).messages[0]
    assert inbound.campaign == "Chat with us"
    assert inbound.text == (
        "Hello! Can I get more info on this?\n[came from a click-to-WhatsApp ad: Chat with us — "
        "Summer Succulents are here! — https://fb.me/3cr4Wqqkv]"
    )
    payload = json.loads(json.dumps(MESSAGE_EXAMPLES["Text Message from Click to WhatsApp Ad"]))
    referral = payload["entry"][0]["changes"][0]["value"]["messages"][0]["referral"]
    del referral["headline"]
    assert parse_webhook(payload).messages[0].campaign == "120226305854810726"  # no headline: the ad's id
    assert parse_webhook(MESSAGE_EXAMPLES["Text Message"]).messages[0].campaign is None


def one_message(kind: str, content: object, **extra: object) -> dict[str, Any]:
    payload = meta.text_message(wa_id="1555", name="Ann", text="x", phone_number_id="P")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message.update({"type": kind, kind: content, **extra})
    return payload


def text_of(kind: str, content: object, **extra: object) -> str:
    return parse_webhook(one_message(kind, content, **extra)).messages[0].text


@pytest.mark.parametrize(
    ("context", "first_line"),
    [
        ({"forwarded": True}, "[forwarded]"),
        ({"frequently_forwarded": True, "forwarded": True}, "[forwarded many times]"),
    ],
)
def test_forwarded_messages_say_so(context: dict[str, object], first_line: str):
    assert text_of("text", {"body": "look at this"}, context=context) == f"{first_line}\nlook at this"


def test_a_reaction_taken_back_is_an_empty_reaction():
    inbound = parse_webhook(one_message("reaction", {"message_id": "wamid.OURS", "emoji": ""})).messages[0]
    assert (inbound.kind, inbound.text, inbound.reply_to_provider_id) == ("reaction", "", "wamid.OURS")


def test_a_reaction_without_the_message_it_reacts_to_is_malformed():
    with pytest.raises(MalformedDelivery):
        parse_webhook(one_message("reaction", {"emoji": "👍"}))


def test_contacts_show_every_name_phone_and_email():
    cards = [
        {
            "name": {"first_name": "Ann", "last_name": "Lee"},
            "phones": [{"phone": "+351 912 345 678"}, {"phone": "+1 555 0100"}],
            "emails": [{"email": "ann@example.com", "type": "WORK"}],
        },
        {"name": {"formatted_name": "Bo"}, "org": {"company": "Acme"}},
        {},
    ]
    assert text_of("contacts", cards) == (
        "[contact card] Ann Lee — phone: +351 912 345 678, +1 555 0100 — email: ann@example.com\n"
        "[contact card] Bo (Acme)\n"
        "[contact card] (no name)"
    )


def test_a_location_without_a_name_still_links_the_map():
    assert text_of("location", {"latitude": 38.7, "longitude": -9.1}) == (
        "[location]\nhttps://www.google.com/maps/search/?api=1&query=38.7,-9.1"
    )


@pytest.mark.parametrize(
    ("kind", "content", "text"),
    [
        (
            "interactive",
            {"type": "nfm_reply", "nfm_reply": {"body": "Sent", "response_json": "{}"}},
            "[form reply] Sent",
        ),
        (
            "interactive",
            {"type": "call_permission_reply", "call_permission_reply": {}},
            "[call permission reply] (no title)",
        ),
        ("button", {"payload": "STOP"}, "[quick reply] STOP"),
        ("order", {"catalog_id": "1", "product_items": [], "text": "asap"}, "[order] 0 items\nasap"),
        ("system", {"type": "customer_identity_changed"}, "[system] customer_identity_changed"),
    ],
)
def test_other_kinds_read_as_a_person_would(kind: str, content: object, text: str):
    assert text_of(kind, content) == text


@pytest.mark.parametrize("kind", ["request_welcome", "ephemeral", "poll", "brand_new_kind"])
def test_a_kind_we_do_not_know_is_a_visible_notice_never_silence(kind: str):
    text = text_of(kind, {"whatever": 1})
    assert text == f"[unsupported] The lead sent a WhatsApp {kind} message; it cannot be shown here."


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
    assert parsed.updates[1].error == (
        "WhatsApp could not deliver it: the number may not be on WhatsApp, or the lead has not accepted "
        "WhatsApp's latest terms or uses an old app version (WhatsApp 131026: Message undeliverable — "
        "Not on WhatsApp)"
    )
    assert not parsed.updates[1].needs_template


@pytest.mark.parametrize(
    ("errors", "reason", "needs_template"),
    [
        (
            [{"code": 131047, "title": "Re-engagement message"}],
            "More than 24 hours since the lead last wrote: WhatsApp only takes an approved template now. "
            "(WhatsApp 131047: Re-engagement message)",
            True,
        ),
        ([{"code": 135000, "message": "Generic user error"}], "WhatsApp 135000: Generic user error", False),
        (None, "WhatsApp ?: failed", False),
    ],
)
def test_a_failed_status_carries_its_reason(
    errors: list[dict[str, Any]] | None, reason: str, needs_template: bool
):
    failed = meta.status_update(
        message_id="wamid.Z", recipient_id="1555", status="failed", phone_number_id="P", errors=errors
    )
    update = parse_webhook(failed).updates[0]
    assert (update.status, update.error, update.needs_template) == (
        DeliveryStatus.FAILED,
        reason,
        needs_template,
    )


def test_statuses_that_say_nothing_about_delivery_are_skipped():
    deleted = meta.status_update(
        message_id="wamid.D", recipient_id="1555", status="read", phone_number_id="P"
    )
    deleted["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = "deleted"
    assert parse_webhook(deleted).updates == []


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


def sender_with(handler: Callable[[httpx.Request], httpx.Response]) -> WhatsAppSender:
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


def oauth_error(code: int, status: int = 400) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": "nope", "type": "OAuthException", "code": code}})


@pytest.mark.parametrize(
    ("response", "kind", "words"),
    [
        (graph_error(131047), NeedsTemplate, "24 hours"),
        (graph_error(190, 401), ChannelBroken, "WHATSAPP_ACCESS_TOKEN"),
        (oauth_error(0, 401), ChannelBroken, "expired, revoked or invalid"),
        (oauth_error(0, 400), ChannelBroken, "expired, revoked or invalid"),
        (httpx.Response(401, text="Unauthorized"), ChannelBroken, "access token"),
        (oauth_error(10, 403), ChannelBroken, "lacks permission"),
        (oauth_error(200, 403), ChannelBroken, "lacks permission"),
        (graph_error(131031), ChannelBroken, "locked or restricted"),
        (graph_error(131042), ChannelBroken, "payment"),
        (graph_error(100), PermanentDelivery, "rejected a parameter .*boom — why"),
        (graph_error(131026), PermanentDelivery, "could not deliver it: the number may not be on WhatsApp"),
        (graph_error(131051), PermanentDelivery, "does not support this message type"),
        (graph_error(131000), PermanentDelivery, "unknown reason"),
        (graph_error(132001), PermanentDelivery, "does not exist in that language"),
        (graph_error(999999), PermanentDelivery, "refused the message: boom — why"),
        (graph_error(4), RetryableDelivery, "boom"),
        (graph_error(80007), RetryableDelivery, "boom"),
        (graph_error(130429, 429, {"Retry-After": "7"}), RetryableDelivery, "boom"),
        (graph_error(131056), RetryableDelivery, "boom"),
        (graph_error(131000, 500), RetryableDelivery, "unknown reason"),
        (httpx.Response(502, text="bad gateway"), RetryableDelivery, "HTTP 502"),
        (httpx.Response(503, json=["not", "an", "object"]), RetryableDelivery, "HTTP 503"),
        (httpx.Response(429, headers={"Retry-After": "2.5"}), RetryableDelivery, "HTTP 429"),
    ],
)
def test_graph_errors_become_core_kinds(response: httpx.Response, kind: type[Exception], words: str):
    with pytest.raises(DeliveryError, match=words) as caught:
        sender_with(lambda request: response).send(OUT)
    assert type(caught.value) is kind
    if "Retry-After" in response.headers:
        assert isinstance(caught.value, RetryableDelivery)
        assert caught.value.retry_after == float(response.headers["Retry-After"])


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("", None), ("soon", None), ("120", 120.0), ("99999", 3600.0), ("-5", 0.0), ("nan", None)],
)
def test_retry_after_is_honoured_within_reason(header: str | None, seconds: float | None):
    headers = {"Retry-After": header} if header is not None else {}
    response = graph_error(130429, 429, headers)
    with pytest.raises(RetryableDelivery) as caught:
        sender_with(lambda request: response).send(OUT)
    assert caught.value.retry_after == seconds


def test_retry_after_as_an_http_date():
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    with pytest.raises(RetryableDelivery) as caught:
        sender_with(lambda request: graph_error(80007, 429, {"Retry-After": when})).send(OUT)
    assert 50 <= (caught.value.retry_after or 0) <= 60


def test_the_access_token_is_never_in_an_error():
    for response in (oauth_error(190, 401), graph_error(100), graph_error(131047)):
        with pytest.raises(DeliveryError) as caught:
            sender_with(lambda request, r=response: r).send(OUT)  # type: ignore[misc]
        assert "tok" not in str(caught.value).replace("token", "")


TEMPLATES = (Template("follow_up", "en_US"), Template("reminder", "pt_BR"))


def test_free_text_after_the_window_needs_a_template_and_graph_is_not_asked():
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    sender = sender_with(handler)
    sender.templates = TEMPLATES
    late = replace(OUT, last_inbound_at=datetime.now(UTC) - timedelta(hours=24, minutes=1))
    with pytest.raises(NeedsTemplate, match="Pick one below"):
        sender.send(late)
    assert calls == []


def test_without_templates_configured_the_rep_is_told_what_to_set():
    sender = sender_with(lambda request: graph_error(131047))
    with pytest.raises(NeedsTemplate, match="set WHATSAPP_TEMPLATES"):
        sender.send(OUT)


def test_inside_the_window_text_goes_to_graph():
    sender = sender_with(lambda request: httpx.Response(200, json={"messages": [{"id": "wamid.IN"}]}))
    recent = replace(OUT, last_inbound_at=datetime.now(UTC) - timedelta(hours=23, minutes=59))
    assert sender.send(recent).provider_message_id == "wamid.IN"


def test_a_template_goes_out_as_the_spec_wants_even_after_the_window():
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"messages": [{"id": "wamid.T"}]})

    sender = sender_with(handler)
    sender.templates = TEMPLATES
    old = datetime.now(UTC) - timedelta(days=3)
    message = replace(OUT, text="", template=Template("reminder", "pt_BR"), last_inbound_at=old)
    assert sender.send(message).provider_message_id == "wamid.T"
    assert seen == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "15551234567",
            "type": "template",
            "template": {"name": "reminder", "language": {"policy": "deterministic", "code": "pt_BR"}},
        }
    ]
    assert GRAPH.check_send(seen[0]) is None


def test_a_template_not_configured_is_refused_before_graph():
    sender = sender_with(lambda request: httpx.Response(500))
    with pytest.raises(PermanentDelivery, match="not in WHATSAPP_TEMPLATES"):
        sender.send(replace(OUT, template=Template("made_up", "en")))


@pytest.mark.parametrize(
    ("value", "templates"),
    [
        ("follow_up:en_US", (Template("follow_up", "en_US"),)),
        (" follow_up:en_US , reminder:pt_BR,,follow_up:en_US ", TEMPLATES),
        ("promo_2:es_419", (Template("promo_2", "es_419"),)),
    ],
)
def test_whatsapp_templates_setting(value: str, templates: tuple[Template, ...]):
    assert parse_templates(value) == templates


@pytest.mark.parametrize("value", ["follow_up", "Follow Up:en_US", "follow_up:", ":en_US", "a:b:c"])
def test_a_bad_whatsapp_templates_setting_says_what_it_should_look_like(value: str):
    with pytest.raises(ValueError, match="name:language"):
        parse_templates(value)


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


def test_a_malformed_whatsapp_templates_setting_stops_with_one_line(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("THREADLINE_ENV_FILE", "")
    monkeypatch.setenv("WHATSAPP_TEMPLATES", "follow_up:en_US, Follow Up")
    with pytest.raises(SettingsError, match=r"WHATSAPP_TEMPLATES: .*'Follow Up' is not name:language"):
        WhatsAppSettings.load()
    monkeypatch.setenv("WHATSAPP_TEMPLATES", "follow_up:en_US, reminder:pt_BR")
    assert WhatsAppSettings.load().templates == TEMPLATES
    monkeypatch.setenv("WHATSAPP_TEMPLATES", "")
    assert WhatsAppSettings.load().templates == ()


def test_check_names_the_templates_offered():
    def graph(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"id": "PN1", "display_phone_number": "+1 555", "verified_name": "Acme"}
        )

    def channel(templates: str | None) -> WhatsAppChannel:
        settings = WhatsAppSettings(
            WHATSAPP_ACCESS_TOKEN="tok",
            WHATSAPP_PHONE_NUMBER_ID="PN1",
            WHATSAPP_APP_SECRET="s",
            WHATSAPP_VERIFY_TOKEN="v",
            WHATSAPP_TEMPLATES=templates,
        )
        return WhatsAppChannel(settings, client=httpx.Client(transport=httpx.MockTransport(graph)))

    lines = {h.what: h for h in channel("follow_up:en_US,reminder:pt_BR").health()}
    assert lines["whatsapp templates"].detail.endswith("follow_up (en_US), reminder (pt_BR)")
    assert channel("reminder:pt_BR").templates() == (Template("reminder", "pt_BR"),)
    none = {h.what: h for h in channel(None).health()}["whatsapp templates"]
    assert none.state == "off" and "set WHATSAPP_TEMPLATES" in none.detail


def test_an_ad_click_with_nothing_typed_shows_only_the_ad():
    payload = json.loads(json.dumps(MESSAGE_EXAMPLES["Text Message from Click to WhatsApp Ad"]))
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = ""
    text = parse_webhook(payload).messages[0].text
    assert text.startswith("[came from a click-to-WhatsApp ad: Chat with us")


@pytest.mark.parametrize(
    ("kind", "content", "extra"),
    [
        ("text", {"body": "hi"}, {"context": {"id": {"not": "an id"}}}),
        ("text", {"body": "hi"}, {"context": "wamid.X"}),
        ("text", {"body": "hi"}, {"referral": {"headline": ["Spring"]}}),
        ("text", {"body": "hi"}, {"referral": "an ad"}),
        ("location", {"latitude": None, "longitude": 1}, {}),
        ("location", {"latitude": True, "longitude": 1}, {}),
        ("location", "Lisbon", {}),
        ("contacts", [{"phones": {"phone": "1"}}], {}),
        ("contacts", [{"name": {"formatted_name": 7.5}}], {}),
        ("interactive", {"type": "button_reply", "button_reply": "Yes"}, {}),
        ("order", {"product_items": [{"product_retailer_id": "x", "quantity": [2]}]}, {}),
        ("reaction", {"message_id": None, "emoji": "👍"}, {}),
        ("reaction", {"message_id": "wamid.X", "emoji": ["👍"]}, {}),
        ("system", None, {}),
    ],
    ids=lambda v: repr(v)[:60],
)
def test_a_wrongly_typed_field_of_any_kind_is_malformed_never_shown_as_junk(
    kind: str, content: object, extra: dict[str, object]
):
    with pytest.raises(MalformedDelivery):
        parse_webhook(one_message(kind, content, **extra))


def test_a_contacts_message_that_is_not_a_list_shows_an_empty_card_notice():
    assert text_of("contacts", {"name": "?"}) == "[contact card] (empty)"


def test_a_forwarded_flag_that_is_not_true_says_nothing():
    assert text_of("text", {"body": "hi"}, context={"forwarded": "yes"}) == "hi"
