"""Upload endpoints. Spec: client-server API content repository: "POST /_matrix/media/v3/upload",
"POST /_matrix/media/v1/create", "PUT /_matrix/media/v3/upload/{serverName}/{mediaId}" and
"GET /_matrix/client/v1/media/config" (plus the deprecated /_matrix/media/v3/config)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.responses import json_response
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.media import upload as media_upload
from homeserver.services.media.sniff import check_filename, normalize_content_type
from homeserver.storage.media_staging import StagedFile, discard, stage_stream

run = sync_to_async


def _params(request: HttpRequest) -> tuple[str, str]:
    # Spec: Content-Type header (optional, default application/octet-stream), ?filename=.
    return (normalize_content_type(request.META.get("CONTENT_TYPE")),
            check_filename(request.GET.get("filename")))


async def _stage(request: HttpRequest, user_id: str) -> StagedFile:
    declared = await run(media_upload.check_upload_allowed)(
        user_id, request.META.get("CONTENT_LENGTH"))
    # File I/O of up to max_upload_size: in the thread pool, off the ORM thread.
    return await sync_to_async(stage_stream, thread_sensitive=False)(
        request.read, max_size=settings.PALISADE.media.max_upload_size, expected_size=declared)


async def upload(request: HttpRequest) -> HttpResponse:
    req = await require_auth(request)
    content_type, filename = _params(request)
    staged = await _stage(request, req.user_id)
    try:
        uri = await run(media_upload.do_upload)(req.user_id, staged, content_type, filename)
    finally:
        discard(staged)
    return json_response({"content_uri": uri})


async def create(request: HttpRequest) -> HttpResponse:
    req = await require_auth(request)
    return json_response(await run(media_upload.do_create_pending)(req.user_id))


async def upload_to(request: HttpRequest, server_name: str, media_id: str) -> HttpResponse:
    req = await require_auth(request)
    content_type, filename = _params(request)
    await run(media_upload.check_pending_target)(req.user_id, server_name, media_id)
    staged = await _stage(request, req.user_id)
    try:
        await run(media_upload.do_upload_pending)(req.user_id, server_name, media_id, staged,
                                                  content_type, filename)
    finally:
        discard(staged)
    return json_response({})


async def config(request: HttpRequest) -> HttpResponse:
    await require_auth(request)
    return json_response({"m.upload.size": settings.PALISADE.media.max_upload_size})


def require_legacy_enabled() -> None:
    """Spec v1.11 content repository: servers SHOULD "freeze" the deprecated unauthenticated
    endpoints; ours are frozen entirely unless [media] legacy_unauthenticated_endpoints."""
    if not settings.PALISADE.media.legacy_unauthenticated_endpoints:
        raise MatrixError(404, Errcode.NOT_FOUND, "Unauthenticated media endpoints are "
                          "disabled; use /_matrix/client/v1/media")


async def legacy_config(request: HttpRequest) -> HttpResponse:
    require_legacy_enabled()
    return await config(request)
