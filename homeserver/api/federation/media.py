"""Federation media endpoints: thin views over services.media.federation_serve.

Spec: server-server API "Content Repository" (GET /_matrix/federation/v1/media/download/
{mediaId}, GET /_matrix/federation/v1/media/thumbnail/{mediaId}): a multipart/mixed answer
(RFC 2046) of exactly two parts, the JSON metadata (always `{}` today) and the content with its
Content-Type and Content-Disposition. The bytes are served inline in the second part, never as
a `Location` redirect.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from homeserver.api.federation.auth import require_server
from homeserver.api.media.download import MEDIA_HEADERS, _chunks, _thumbnail_request, _timeout
from homeserver.services.media.download import Servable
from homeserver.services.media.federation_serve import serve_download, serve_thumbnail


def _multipart(servable: Servable) -> HttpResponse:
    boundary = secrets.token_hex(16)
    head = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n"
            f"--{boundary}\r\nContent-Type: {servable.content_type}\r\n"
            f"Content-Disposition: {servable.disposition}\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for chunk in _chunks(servable.file):
            yield chunk
        yield tail

    response = StreamingHttpResponse(body(),
                                     content_type=f"multipart/mixed; boundary={boundary}")
    response["Content-Length"] = str(len(head) + servable.size + len(tail))
    for name, value in MEDIA_HEADERS.items():
        response[name] = value
    return response


async def download(request: HttpRequest, media_id: str) -> HttpResponse:
    await require_server(request)
    servable = await serve_download(media_id, _timeout(request.GET))
    return _multipart(servable)


async def thumbnail(request: HttpRequest, media_id: str) -> HttpResponse:
    await require_server(request)
    req = _thumbnail_request(request.GET)
    servable = await serve_thumbnail(media_id, req, _timeout(request.GET))
    return _multipart(servable)
