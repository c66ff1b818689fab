"""Download and thumbnail endpoints. Spec: client-server API content repository,
"GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}]" and
"GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}" (authenticated, v1.11), and the
deprecated unauthenticated /_matrix/media/v3 ones behind [media] legacy_unauthenticated_endpoints.

Every response carries the headers of "Serving inline content" and the SHOULDs of the module:
the recommended Content-Security-Policy, `Cross-Origin-Resource-Policy: cross-origin` (v1.4),
and `X-Content-Type-Options: nosniff` so browsers never second-guess the Content-Type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import BinaryIO

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.media.upload import require_legacy_enabled
from homeserver.api.params import bool_param, int_param
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.media import remote, remote_thumbnails, thumbnails
from homeserver.services.media.download import (
    DEFAULT_TIMEOUT_MS,
    Servable,
    servable_download,
    wait_for_content,
)
from homeserver.services.media.mxc import is_local
from homeserver.services.media.sniff import check_filename

CHUNK = 256 * 1024
MEDIA_HEADERS = {
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
        "style-src 'unsafe-inline'; object-src 'self';"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",
    # Never in shared caches; an mxc:// URI's content does not change.
    "Cache-Control": "private, max-age=86400",
}


async def _chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await sync_to_async(file.read, thread_sensitive=False)(CHUNK):
            yield chunk
    finally:
        file.close()


def _file_response(servable: Servable) -> HttpResponse:
    response = StreamingHttpResponse(_chunks(servable.file), content_type=servable.content_type)
    response["Content-Length"] = str(servable.size)
    response["Content-Disposition"] = servable.disposition
    for name, value in MEDIA_HEADERS.items():
        response[name] = value
    return response


def _timeout(query: QueryDict) -> int:
    return int_param(query, "timeout_ms", DEFAULT_TIMEOUT_MS)


async def _download(request: HttpRequest, server_name: str, media_id: str,
                    file_name: str | None) -> HttpResponse:
    filename = check_filename(file_name) if file_name else None
    record = await wait_for_content(server_name, media_id, _timeout(request.GET))
    return _file_response(await sync_to_async(servable_download)(record, filename))


def _dimension(query: QueryDict, name: str) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        raise MatrixError(400, Errcode.MISSING_PARAM, f"{name} is required")
    try:
        return int(raw)
    except ValueError:
        raise MatrixError(400, Errcode.INVALID_PARAM, f"{name} must be an integer") from None


def _thumbnail_request(q: QueryDict) -> thumbnails.ThumbnailRequest:
    return thumbnails.ThumbnailRequest(_dimension(q, "width"), _dimension(q, "height"),
                                       q.get("method") or "scale", bool_param(q, "animated"))


async def _thumbnail(request: HttpRequest, server_name: str, media_id: str) -> HttpResponse:
    q = request.GET
    req = _thumbnail_request(q)
    record = await wait_for_content(server_name, media_id, _timeout(q))
    return _file_response(await thumbnails.thumbnail(record, req))


async def download(request: HttpRequest, server_name: str, media_id: str,
                   file_name: str | None = None) -> HttpResponse:
    requester = await require_auth(request)
    if not is_local(server_name):  # fetched over federation (services/media/remote.py)
        filename = check_filename(file_name) if file_name else None
        return _file_response(await remote.remote_download(
            requester.user_id, server_name, media_id, filename, _timeout(request.GET)))
    return await _download(request, server_name, media_id, file_name)


async def thumbnail(request: HttpRequest, server_name: str, media_id: str) -> HttpResponse:
    requester = await require_auth(request)
    if not is_local(server_name):
        return _file_response(await remote_thumbnails.remote_thumbnail(
            requester.user_id, server_name, media_id, _thumbnail_request(request.GET),
            _timeout(request.GET)))
    return await _thumbnail(request, server_name, media_id)


async def legacy_download(request: HttpRequest, server_name: str, media_id: str,
                          file_name: str | None = None) -> HttpResponse:
    require_legacy_enabled()
    return await _download(request, server_name, media_id, file_name)


async def legacy_thumbnail(request: HttpRequest, server_name: str, media_id: str) -> HttpResponse:
    require_legacy_enabled()
    return await _thumbnail(request, server_name, media_id)
