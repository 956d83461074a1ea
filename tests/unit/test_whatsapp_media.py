"""WhatsApp media both ways, against the strict Graph stand-in: a lead's file fetched, a rep's file sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import httpx
import pytest
from pydantic import SecretStr

from channels.whatsapp.adapter import WhatsAppChannel
from channels.whatsapp.outbound import WhatsAppSender
from channels.whatsapp.settings import WhatsAppSettings
from core.errors import ChannelBroken, PermanentDelivery, RetryableDelivery
from core.ports import Outbound, OutboundFile
from tests.conftest import SPECS
from tests.standins.graph_api import GraphStandIn

SPEC = SPECS / "whatsapp" / "business-messaging-api_v23.0.yaml"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x00pixels" * 200
PDF = b"%PDF-1.4 quote"


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphStandIn]:
    with GraphStandIn(SPEC, access_token="tok", phone_number_id="PN1") as standin:
        yield standin


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15.0) as client:
        yield client


@pytest.fixture
def sender(graph: GraphStandIn, client: httpx.Client) -> Iterator[WhatsAppSender]:
    graph.violations.clear()
    yield WhatsAppSender(api_url=graph.base_url, phone_number_id="PN1", access_token="tok", client=client)
    assert graph.violations == []


def reply(text: str, *files: OutboundFile, parts_sent: int = 0) -> Outbound:
    return Outbound(
        message_id=1,
        channel="whatsapp",
        channel_account="PN1",
        to="15551234567",
        text=text,
        files=files,
        parts_sent=parts_sent,
    )


# --- a lead's file ----------------------------------------------------------------------------------


def test_the_adapter_fetches_a_lead_photo_by_its_media_id(graph: GraphStandIn, client: httpx.Client):
    media_id = graph.add_media(PHOTO, "image/png")
    settings = WhatsAppSettings(
        WHATSAPP_ACCESS_TOKEN=SecretStr("tok"),
        WHATSAPP_PHONE_NUMBER_ID="PN1",
        WHATSAPP_APP_SECRET=SecretStr("secret"),
        WHATSAPP_VERIFY_TOKEN=SecretStr("verify"),
        WHATSAPP_API_URL=graph.base_url,
    )
    fetched = WhatsAppChannel(settings, client=client).fetch_file({"media_id": media_id})
    assert (fetched.content, fetched.mime_type) == (PHOTO, "image/png")
    assert fetched.name == f"{media_id}.png"
    assert graph.violations == []


def test_expired_media_is_permanent_and_says_so(graph: GraphStandIn, sender: WhatsAppSender):
    media_id = graph.add_media(PHOTO, "image/png")
    graph.expire_media(media_id)
    with pytest.raises(PermanentDelivery, match="no longer has this file"):
        sender.media.fetch({"media_id": media_id})


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        (130429, 429, RetryableDelivery),  # throttled
        (1, 500, RetryableDelivery),  # Graph down
        (190, 401, ChannelBroken),  # the token expired
    ],
)
def test_fetch_failures_map_to_what_happens_next(
    graph: GraphStandIn, sender: WhatsAppSender, code: int, status: int, kind: type[Exception]
):
    media_id = graph.add_media(PHOTO, "image/png")
    graph.fail_media_next(code, http_status=status)
    with pytest.raises(kind):
        sender.media.fetch({"media_id": media_id})


def test_a_file_over_the_cap_is_refused_without_downloading_it(graph: GraphStandIn, sender: WhatsAppSender):
    small = replace(sender.media, max_bytes=100)
    media_id = graph.add_media(PHOTO, "image/png")
    with pytest.raises(PermanentDelivery, match="more than the"):
        small.fetch({"media_id": media_id})
    assert f"download {media_id}" not in graph.media_requests  # file_size said it: nothing downloaded


def test_an_unreachable_graph_is_retried():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    sender = WhatsAppSender(
        api_url="https://graph.test/v23.0",
        phone_number_id="PN1",
        access_token="tok",
        client=httpx.Client(transport=httpx.MockTransport(refuse)),
    )
    with pytest.raises(RetryableDelivery):
        sender.media.fetch({"media_id": "1"})
    with pytest.raises(RetryableDelivery):
        sender.send(reply("", OutboundFile("p.png", "image/png", PHOTO)))


# --- a rep's file -----------------------------------------------------------------------------------


def test_a_photo_goes_as_an_image_with_the_text_as_its_caption(graph: GraphStandIn, sender: WhatsAppSender):
    before = len(graph.sent)
    receipt = sender.send(reply("Our new office", OutboundFile("office.png", "image/png", PHOTO)))
    [sent] = graph.sent[before:]
    assert sent.type == "image" and sent.body["image"]["caption"] == "Our new office"
    assert graph.media[sent.body["image"]["id"]].content == PHOTO
    assert receipt.provider_message_id == sent.message_id


def test_a_document_keeps_its_name_and_audio_takes_no_caption(graph: GraphStandIn, sender: WhatsAppSender):
    before = len(graph.sent)
    sender.send(reply("The quote", OutboundFile("quote.pdf", "application/pdf", PDF)))
    sender.send(reply("Listen", OutboundFile("note.ogg", "audio/ogg; codecs=opus", b"OggS voice")))
    document, text, audio = graph.sent[before:]
    assert document.body["document"] == {
        "id": document.body["document"]["id"],
        "caption": "The quote",
        "filename": "quote.pdf",
    }
    assert (text.type, text.body["text"]["body"]) == ("text", "Listen")  # said first, then the audio
    assert audio.type == "audio" and "caption" not in audio.body["audio"]


def test_a_text_too_long_for_a_caption_goes_first(graph: GraphStandIn, sender: WhatsAppSender):
    before = len(graph.sent)
    sender.send(reply("x" * 2000, OutboundFile("office.png", "image/png", PHOTO)))
    assert [s.type for s in graph.sent[before:]] == ["text", "image"]


def test_a_retry_sends_only_the_parts_not_taken(graph: GraphStandIn, sender: WhatsAppSender):
    files = (OutboundFile("a.png", "image/png", PHOTO), OutboundFile("b.pdf", "application/pdf", PDF))
    taken: list[int] = []

    def part_taken(number: int, _provider_id: str) -> None:
        taken.append(number)
        if number == 1:
            graph.fail_next(131000, http_status=500)  # WhatsApp stumbles on the next part

    before = len(graph.sent)
    with pytest.raises(RetryableDelivery):
        sender.send(reply("Both", *files), part_taken)
    sender.send(reply("Both", *files, parts_sent=len(taken)), part_taken)  # what core retries with

    assert taken == [1, 2]
    image, document = graph.sent[before:]  # the photo once, with its caption; then the PDF
    assert image.body["image"]["caption"] == "Both" and document.body["document"]["filename"] == "b.pdf"


def test_a_type_whatsapp_does_not_take_fails_before_anything_leaves(
    graph: GraphStandIn, sender: WhatsAppSender
):
    before, requests = len(graph.sent), len(graph.media_requests)
    files = (OutboundFile("ok.png", "image/png", PHOTO), OutboundFile("x.zip", "application/zip", b"PK"))
    with pytest.raises(PermanentDelivery, match="does not take application/zip"):
        sender.send(reply("Here", *files))
    assert len(graph.sent) == before and len(graph.media_requests) == requests


def test_a_file_graph_refuses_fails_with_its_reason(graph: GraphStandIn, sender: WhatsAppSender):
    graph.fail_media_next(131053, message="Media upload error")
    with pytest.raises(
        PermanentDelivery, match=r"WhatsApp refused the file office\.png: WhatsApp could not read the file"
    ):
        sender.send(reply("", OutboundFile("office.png", "image/png", PHOTO)))


def test_a_big_image_goes_as_a_document(graph: GraphStandIn, sender: WhatsAppSender):
    before = len(graph.sent)
    sender.send(reply("", OutboundFile("poster.png", "image/png", b"\x89PNG" + b"0" * (6 * 1024 * 1024))))
    [sent] = graph.sent[before:]
    assert sent.type == "document" and sent.body["document"]["filename"] == "poster.png"


def test_the_graph_stand_in_refuses_what_the_spec_does_not_allow(graph: GraphStandIn, client: httpx.Client):
    """Strict, or it proves nothing: fields the upload schema lacks, unknown query parameters, sends
    naming media nobody uploaded, captions where WhatsApp shows none."""
    auth = {"Authorization": "Bearer tok"}
    graph.violations.clear()
    client.post(
        f"{graph.base_url}/PN1/media",
        data={"messaging_product": "whatsapp", "colour": "red"},
        files={"file": ("a.png", PHOTO, "image/png")},
        headers=auth,
    )
    client.get(
        f"{graph.base_url}/{graph.add_media(PHOTO, 'image/png')}", params={"fields": "url"}, headers=auth
    )
    send = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "1555"}
    client.post(
        f"{graph.base_url}/PN1/messages", json={**send, "type": "image", "image": {"id": "42"}}, headers=auth
    )
    assert len(graph.violations) == 3, graph.violations
    graph.violations.clear()


def mock_sender(handler: Callable[[httpx.Request], httpx.Response]) -> WhatsAppSender:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return WhatsAppSender(
        api_url="https://graph.test/v23.0", phone_number_id="PN1", access_token="tok", client=client
    )


def test_an_unreadable_graph_answer_is_retried_not_a_crash():
    garbage = mock_sender(lambda request: httpx.Response(200, text="<html>proxy error</html>"))
    with pytest.raises(RetryableDelivery):
        garbage.media.fetch({"media_id": "1"})
    with pytest.raises(RetryableDelivery):
        garbage.send(reply("", OutboundFile("p.png", "image/png", PHOTO)))


def test_a_download_url_gone_is_permanent_and_a_throttled_one_retried():
    def graph(status: int) -> Callable[[httpx.Request], httpx.Response]:
        def answer(request: httpx.Request) -> httpx.Response:
            if request.url.host == "lookaside.test":
                return httpx.Response(
                    status, json={"error": {"message": "no", "code": 0 if status == 404 else 4}}
                )
            return httpx.Response(
                200, json={"url": "https://lookaside.test/m?mid=1", "mime_type": "image/png"}
            )

        return answer

    with pytest.raises(PermanentDelivery, match="no longer has this file"):
        mock_sender(graph(404)).media.fetch({"media_id": "1"})
    with pytest.raises(RetryableDelivery):
        mock_sender(graph(429)).media.fetch({"media_id": "1"})
