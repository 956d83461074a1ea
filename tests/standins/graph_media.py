"""The media endpoints of the Graph stand-in (graph_api.py), checked against the WhatsApp spec.

- `GET /{Version}/{Media-ID}` (Retrieve Media URL; optional `phone_number_id`): `url`, `mime_type`,
  `sha256`, `file_size` (a string, as the spec's example), `id`, `messaging_product`.
- `GET {url}` (Download Media): the bytes, only with the bearer token; the URL lives 5 minutes.
- `POST /{Version}/{Phone-Number-ID}/media` (Upload): multipart form-data with `file` and
  `messaging_product=whatsapp` (and `type`, the file's MIME type, which Meta's upload guide asks for);
  answers `{"id": …}`. A type WhatsApp does not take is refused as Graph refuses it (131053), not a
  violation: the app must cope with it.
Sends that name a media id must name one uploaded here; captions only where WhatsApp shows them
(image, video, document), a filename only on a document.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from aiohttp import web

UPLOAD_PATH = "/{Version}/{Phone-Number-ID}/media"
MEDIA_PATH = "/{Version}/{Media-ID}"
DOWNLOAD_PREFIX = "/whatsapp_business/attachments/"
URL_LIFETIME = 300.0  # seconds, as Meta says
TAKEN_TYPES = {
    "image/jpeg",
    "image/png",
    "image/webp",  # stickers
    "video/mp4",
    "video/3gpp",
    "audio/aac",
    "audio/amr",
    "audio/mpeg",
    "audio/mp4",
    "audio/ogg",
    "text/plain",
    "application/pdf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
CAPTION_KINDS = {"image", "video", "document"}
MEDIA_KINDS = {"image", "video", "audio", "document", "sticker"}
CAPTION_LIMIT = 1024


@dataclass
class Media:
    id: str
    content: bytes
    mime_type: str
    filename: str | None = None
    uploaded: bool = False  # by the app (an outbound file), not a lead
    expired: bool = False
    urls: dict[str, float] = field(default_factory=dict)  # download token → when it was given


class GraphMedia:
    """Mixed into GraphStandIn: its state lives under the stand-in's `changed` condition."""

    changed: threading.Condition
    spec: dict[str, Any]
    access_token: str
    phone_number_id: str
    version: str
    base_url: str
    violations: list[str]

    def init_media(self) -> None:
        paths = self.spec["paths"]
        upload = paths[UPLOAD_PATH]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        # `type` (the file's MIME type) is in Meta's upload guide, not in this spec's schema.
        self.upload_fields = set(upload["properties"]) | {"type"}
        retrieve = paths[MEDIA_PATH]["get"]
        self.retrieve_params = {p["name"] for p in retrieve["parameters"] if p.get("in") == "query"}
        answer = retrieve["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
        self.retrieve_fields = set(answer)
        self.media: dict[str, Media] = {}
        self.media_requests: list[str] = []  # "GET <id>", "download <id>", "upload <name>"
        self._media_ids = itertools.count(1)
        self._media_failures: list[tuple[int, int, str]] = []

    # --- test controls -------------------------------------------------------------------------------

    def add_media(self, content: bytes, mime_type: str, *, media_id: str | None = None) -> str:
        """A file a lead sent: its media id, as a webhook names it (`media_id`: a webhook example's)."""
        with self.changed:
            media = Media(media_id or f"{next(self._media_ids) + 900000000000000}", content, mime_type)
            self.media[media.id] = media
            return media.id

    def expire_media(self, media_id: str) -> None:
        with self.changed:
            self.media[media_id].expired = True

    def fail_media_next(self, code: int, *, http_status: int = 400, message: str = "Error") -> None:
        """The next media request (metadata, download or upload) gets Graph's error for `code`."""
        with self.changed:
            self._media_failures.append((code, http_status, message))

    def uploaded(self) -> list[Media]:
        with self.changed:
            return [m for m in self.media.values() if m.uploaded]

    # --- requests ------------------------------------------------------------------------------------

    def is_media_request(self, request: web.Request) -> bool:
        parts = request.path.strip("/").split("/")
        if request.path.startswith(f"/{self.version}{DOWNLOAD_PREFIX}"):
            return True
        if request.method == "POST" and parts == [self.version, self.phone_number_id, "media"]:
            return True
        return (request.method == "GET" and len(parts) == 2 and parts[0] == self.version) and parts[
            1
        ] != self.phone_number_id

    async def media_answer(self, request: web.Request, raw: bytes) -> web.StreamResponse:
        with self.changed:
            self.changed.notify_all()
            if request.headers.get("Authorization") != f"Bearer {self.access_token}":
                self.violations.append(f"{request.method} {request.path}: missing or wrong access token")
                return web.json_response(
                    _error(190, "Invalid OAuth access token - Cannot parse access token", ""), status=401
                )
            if self._media_failures:
                code, status, message = self._media_failures.pop(0)
                self.media_requests.append(f"failed {request.path}")
                return web.json_response(_error(code, message, ""), status=status)
        if request.path.startswith(f"/{self.version}{DOWNLOAD_PREFIX}"):
            return self._download(request)
        if request.method == "POST":
            return self._upload(request, raw)
        return self._retrieve(request)

    def _retrieve(self, request: web.Request) -> web.Response:
        media_id = request.path.strip("/").split("/")[1]
        unknown = set(request.query) - self.retrieve_params
        with self.changed:
            if unknown:
                self.violations.append(f"GET media: unknown parameters {sorted(unknown)}")
                return web.json_response(_error(100, "Invalid parameter", ""), status=400)
            if request.query.get("phone_number_id", self.phone_number_id) != self.phone_number_id:
                self.violations.append("GET media: phone_number_id is not ours")
            media = self.media.get(media_id)
            self.media_requests.append(f"GET {media_id}")
            if media is None or media.expired:
                said = (
                    f"Unsupported get request. Object with ID '{media_id}' does not exist, cannot be "
                    "loaded due to missing permissions, or does not support this operation"
                )
                return web.json_response(_error(100, said, "", kind="GraphMethodException"), status=400)
            token = hashlib.sha256(f"{media_id}{time.time()}".encode()).hexdigest()[:16]
            media.urls[token] = time.time()
            url = f"{self.base_url}{DOWNLOAD_PREFIX}?mid={media_id}&ext={token}"
            answer = {
                "messaging_product": "whatsapp",
                "url": url,
                "mime_type": media.mime_type,
                "sha256": hashlib.sha256(media.content).hexdigest(),
                "file_size": str(len(media.content)),
                "id": media.id,
            }
            assert set(answer) == self.retrieve_fields, "the stand-in answers what the spec says"
            return web.json_response(answer)

    def _download(self, request: web.Request) -> web.Response:
        with self.changed:
            media = self.media.get(request.query.get("mid", ""))
            given = media.urls.get(request.query.get("ext", "")) if media else None
            if media is None or given is None:
                self.violations.append(f"download of a URL Graph never gave: {request.path_qs}")
                return web.Response(status=404)
            if media.expired or time.time() - given > URL_LIFETIME:
                return web.Response(status=404)
            self.media_requests.append(f"download {media.id}")
            return web.Response(body=media.content, content_type=media.mime_type.partition(";")[0])

    def _upload(self, request: web.Request, raw: bytes) -> web.Response:
        fields, problem = _form(request.headers.get("Content-Type", ""), raw)
        with self.changed:
            if problem is None:
                unknown = set(fields) - self.upload_fields
                if unknown:
                    problem = f"upload: unknown fields {sorted(unknown)}"
                elif fields.get("messaging_product") is None or fields["messaging_product"].get_content() != (
                    "whatsapp"
                ):
                    problem = "upload: messaging_product must be whatsapp"
                elif "file" not in fields or not fields["file"].get_filename():
                    problem = "upload: no file part with a filename"
            if problem is not None:
                self.violations.append(problem)
                return web.json_response(_error(100, f"(#100) Invalid parameter: {problem}", ""), status=400)
            part = fields["file"]
            mime_type = part.get_content_type()
            payload = part.get_payload(decode=True)
            content = payload if isinstance(payload, bytes) else b""
            self.media_requests.append(f"upload {part.get_filename()}")
            if mime_type not in TAKEN_TYPES or not content:
                said = f"Media upload error: {mime_type} is not a supported media type"
                return web.json_response(_error(131053, "Media upload error", said), status=400)
            media = Media(
                f"{next(self._media_ids) + 800000000000000}",
                content,
                mime_type,
                part.get_filename(),
                uploaded=True,
            )
            self.media[media.id] = media
            self.changed.notify_all()
            return web.json_response({"id": media.id})

    def check_media_send(self, body: dict[str, Any]) -> str | None:
        """What a media message by id must get right beyond the schema."""
        kind = body.get("type")
        if kind not in MEDIA_KINDS:
            return None
        media = body.get(kind) or {}
        if "id" in media and not (media["id"] in self.media and self.media[media["id"]].uploaded):
            return f"{kind}/id: {media['id']!r} is not a media id this number uploaded"
        if "caption" in media and kind not in CAPTION_KINDS:
            return f"{kind}/caption: WhatsApp shows no caption on {kind}"
        if len(str(media.get("caption", ""))) > CAPTION_LIMIT:
            return f"{kind}/caption: longer than {CAPTION_LIMIT} characters"
        if "filename" in media and kind != "document":
            return f"{kind}/filename: only a document has a filename"
        return None


def _error(code: int, message: str, details: str, *, kind: str = "OAuthException") -> dict[str, Any]:
    from tests.standins.graph_api import _error as graph_error  # the one shape of Graph's errors

    return graph_error(code, message, details, kind=kind)


def _form(content_type: str, raw: bytes) -> tuple[dict[str, MIMEPart], str | None]:
    if not content_type.startswith("multipart/form-data"):
        return {}, f"upload: content type {content_type}, expected multipart/form-data"
    parsed = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    if not isinstance(parsed, EmailMessage) or not parsed.is_multipart():
        return {}, "upload: not a multipart body"
    fields: dict[str, MIMEPart] = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            return {}, "upload: a part without a name"
        fields[name] = part
    return fields, None
