"""WhatsApp media both ways: a lead's file fetched from Graph, a teammate's file uploaded and sent.

Fetch (`GET {API_URL}/{media-id}` → JSON with `url`, `mime_type`, `file_size` → `GET url`, both with our
bearer token): the bytes are read in chunks and given up past MAX_FILE_BYTES. Upload
(`POST {API_URL}/{PHONE_NUMBER_ID}/media`, multipart, `messaging_product=whatsapp`) gives a media id that
a message of type image, video, audio or document then names.

Errors, for both: what Graph's error mapping (`outbound.graph_error`, handed in) says for tokens (401,
190 → `ChannelBroken`), throttling and 5xx (`RetryableDelivery`); media Graph no longer has (404, or
code 100 "does not exist": media expire after 30 days) and a file it refuses (131053…) →
`PermanentDelivery` with the reason; no answer at all → `RetryableDelivery` (fetching or uploading
again is harmless: nothing reaches the lead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from core.errors import PermanentDelivery, RetryableDelivery
from core.ports import MAX_FILE_BYTES, FetchedFile, OutboundFile

CAPTION_LIMIT = 1024  # WhatsApp's longest media caption
_MB = 1024 * 1024
# Meta's supported media types, and each kind's size limit; anything else goes as a document.
_KINDS: dict[str, tuple[frozenset[str], int]] = {
    "image": (frozenset({"image/jpeg", "image/png"}), 5 * _MB),
    "video": (frozenset({"video/mp4", "video/3gpp"}), 16 * _MB),
    "audio": (
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
        16 * _MB,
    ),
}
DOCUMENT_TYPES = frozenset(
    {
        "text/plain",
        "application/pdf",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }
)
DOCUMENT_LIMIT = 100 * _MB
TAKES_CAPTION = {"image", "video", "document"}
_GONE = "WhatsApp no longer has this file (media expire 30 days after the lead sent it)"
_EXTENSIONS = {"jpeg": "jpg", "mpeg": "mp3", "plain": "txt", "3gpp": "3gp"}


def bare_type(mime_type: str) -> str:
    return mime_type.partition(";")[0].strip().lower()


def media_kind(file: OutboundFile) -> str:
    """How WhatsApp takes this file: image, video, audio or document; PermanentDelivery if it will not."""
    mime = bare_type(file.mime_type)
    for kind, (types, limit) in _KINDS.items():
        if mime in types and len(file.content) <= limit:
            return kind  # bigger than its kind allows, it may still go as a document
    if (mime in DOCUMENT_TYPES or any(mime in types for types, _ in _KINDS.values())) and len(
        file.content
    ) <= DOCUMENT_LIMIT:
        return "document"
    if len(file.content) > DOCUMENT_LIMIT:
        raise PermanentDelivery(
            f"{file.name} is {len(file.content) / _MB:.1f} MB: WhatsApp takes files up to 100 MB."
        )
    raise PermanentDelivery(
        f"WhatsApp does not take {mime or 'unknown'} files ({file.name}): send images (JPEG, PNG), videos "
        "(MP4, 3GP), audio (AAC, AMR, MP3, M4A, OGG) or documents (PDF, Word, Excel, PowerPoint, text)."
    )


@dataclass(frozen=True)
class Part:
    """One WhatsApp message of a reply: a text, or a file with its caption."""

    kind: str  # text, image, video, audio, document
    text: str = ""
    file: OutboundFile | None = None


def reply_parts(text: str, files: Sequence[OutboundFile], split: Callable[[str], list[str]]) -> list[Part]:
    """A reply with files, as the messages WhatsApp gets, always the same for the same reply (so a retry
    skips exactly the parts sent): the text as the first file's caption when that file takes one and
    the text fits, else the text first (in as many parts as it needs), then the files. Every file is
    checked before anything is sent, so a file WhatsApp will not take fails the reply whole."""
    kinds = [media_kind(file) for file in files]
    text = text.strip()
    if text and kinds[0] in TAKES_CAPTION and len(text) <= CAPTION_LIMIT:
        first = Part(kinds[0], text, files[0])
        return [first, *(Part(kind, "", file) for kind, file in zip(kinds[1:], files[1:], strict=True))]
    said = [Part("text", part) for part in split(text)] if text else []
    return said + [Part(kind, "", file) for kind, file in zip(kinds, files, strict=True)]


ErrorOf = Callable[[httpx.Response], Exception]  # Graph's error answer as a core kind


@dataclass(frozen=True)
class WhatsAppMedia:
    api_url: str
    phone_number_id: str
    access_token: str
    client: httpx.Client
    error_of: ErrorOf
    max_bytes: int = MAX_FILE_BYTES

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    # --- a lead's file -------------------------------------------------------------------------------

    def fetch(self, ref: Mapping[str, str]) -> FetchedFile:
        media_id = ref.get("media_id")
        if not media_id:
            raise PermanentDelivery("the message names no WhatsApp media id")
        try:
            response = self.client.get(
                f"{self.api_url}/{media_id}",
                params={"phone_number_id": self.phone_number_id},
                headers=self._auth,
            )
        except httpx.TransportError as exc:
            raise RetryableDelivery(f"WhatsApp could not be reached ({type(exc).__name__})") from exc
        if not response.is_success:
            raise self._fetch_error(response)
        about = _json_object(response)
        url = about.get("url")
        if not isinstance(url, str) or not url:
            raise RetryableDelivery("WhatsApp answered without a download URL for the file")
        mime_type = str(about.get("mime_type") or "application/octet-stream")
        size = _int(about.get("file_size"))
        if size is not None and size > self.max_bytes:
            raise PermanentDelivery(_too_big(size, self.max_bytes))
        content = self._download(url)
        return FetchedFile(name=_name(media_id, mime_type), mime_type=mime_type, content=content)

    def _download(self, url: str) -> bytes:
        try:
            with self.client.stream("GET", url, headers=self._auth) as response:
                if not response.is_success:
                    response.read()
                    raise self._fetch_error(response)
                declared = _int(response.headers.get("Content-Length"))
                if declared is not None and declared > self.max_bytes:
                    raise PermanentDelivery(_too_big(declared, self.max_bytes))
                chunks, got = [], 0
                for chunk in response.iter_bytes():
                    got += len(chunk)
                    if got > self.max_bytes:
                        raise PermanentDelivery(_too_big(got, self.max_bytes))
                    chunks.append(chunk)
        except httpx.TransportError as exc:
            raise RetryableDelivery(f"WhatsApp's download broke off ({type(exc).__name__})") from exc
        return b"".join(chunks)

    # --- a teammate's file ---------------------------------------------------------------------------

    def upload(self, file: OutboundFile) -> str:
        """Put the file on WhatsApp's servers; its media id, for a message to name."""
        try:
            response = self.client.post(
                f"{self.api_url}/{self.phone_number_id}/media",
                data={"messaging_product": "whatsapp", "type": bare_type(file.mime_type)},
                files={"file": (file.name, file.content, bare_type(file.mime_type))},
                headers=self._auth,
                timeout=120.0,
            )
        except httpx.TransportError as exc:
            # An upload that never finished sends nothing to the lead: doing it again is safe.
            raise RetryableDelivery(f"WhatsApp could not take the file ({type(exc).__name__})") from exc
        if not response.is_success:
            error = self.error_of(response)
            if type(error) is PermanentDelivery:
                raise PermanentDelivery(
                    f"WhatsApp refused the file {file.name}: {error.reason.split(': ', 1)[-1]}",
                    code=error.code,
                ) from None
            raise error
        media_id = _json_object(response).get("id")
        if not isinstance(media_id, str | int) or not str(media_id):
            raise RetryableDelivery(f"WhatsApp took {file.name} but named no media id")
        return str(media_id)

    def _fetch_error(self, response: httpx.Response) -> Exception:
        error = self.error_of(response)
        if type(error) is not PermanentDelivery:
            return error  # the token (ChannelBroken), throttling or 5xx (RetryableDelivery)
        if response.status_code == 404 or error.code == "100":
            return PermanentDelivery(_GONE, code=error.code)
        return PermanentDelivery(
            f"WhatsApp did not give the file: {error.reason.split(': ', 1)[-1]}", code=error.code
        )


def media_message(to: str, kind: str, media_id: str, *, name: str, caption: str | None) -> dict[str, object]:
    """The send body for a media message by id: a caption where the kind takes one, a document's name."""
    media: dict[str, str] = {"id": media_id}
    if caption and kind in TAKES_CAPTION:
        media["caption"] = caption
    if kind == "document":
        media["filename"] = name
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
        kind: media,
    }


def _too_big(size: int, limit: int) -> str:
    return f"it is {size / _MB:.1f} MB, more than the {limit // _MB} MB Threadline moves"


def _name(media_id: str, mime_type: str) -> str:
    subtype = bare_type(mime_type).partition("/")[2] or "bin"
    return f"{media_id}.{_EXTENSIONS.get(subtype, subtype)}"


def _json_object(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RetryableDelivery(f"WhatsApp answered {response.status_code} with no readable JSON")
    return body


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
