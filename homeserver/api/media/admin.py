"""Media admin API, Synapse-compatible paths (so existing admin tools work) under
/_synapse/admin/v1; every endpoint needs an access token of a server admin (else 403
M_FORBIDDEN):

    POST   /_synapse/admin/v1/media/quarantine/{serverName}/{mediaId}     -> {}
    POST   /_synapse/admin/v1/media/unquarantine/{serverName}/{mediaId}   -> {}
    DELETE /_synapse/admin/v1/media/{serverName}/{mediaId}    -> {"deleted_media": [..], "total"}
    GET    /_synapse/admin/v1/users/{userId}/media?from&limit -> {"media": [..], "total", ...}
    DELETE /_synapse/admin/v1/users/{userId}/media            -> {"deleted_media": [..], "total"}
    GET    /_synapse/admin/v1/statistics/users/media?from&limit&search_term -> {"users": [..]}
"""

from __future__ import annotations

from urllib.parse import unquote

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from audit.actions import ActorType
from homeserver.api.auth import Requester, require_auth
from homeserver.api.params import int_param
from homeserver.api.responses import json_response
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, UserID
from homeserver.services.media import admin as media_admin

run = sync_to_async
MAX_LIMIT = 1000


async def _require_admin(request: HttpRequest) -> Requester:
    req = await require_auth(request)
    if not req.is_admin:
        raise MatrixError(403, Errcode.FORBIDDEN, "You are not a server admin")
    return req


def _page(request: HttpRequest) -> tuple[int, int]:
    offset = int_param(request.GET, "from", 0)
    limit = int_param(request.GET, "limit", 100)
    if offset < 0 or not 1 <= limit <= MAX_LIMIT:
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          f"from must be >= 0 and limit between 1 and {MAX_LIMIT}")
    return offset, limit


def _user_id(raw: str) -> str:
    try:
        return str(UserID.parse_historical(unquote(raw)))
    except InvalidIdentifier:
        raise MatrixError(400, Errcode.INVALID_PARAM, "Invalid user ID") from None


async def quarantine(request: HttpRequest, server_name: str, media_id: str) -> HttpResponse:
    req = await _require_admin(request)
    await run(media_admin.do_quarantine)(req.user_id, server_name, media_id)
    return json_response({})


async def unquarantine(request: HttpRequest, server_name: str, media_id: str) -> HttpResponse:
    req = await _require_admin(request)
    await run(media_admin.do_unquarantine)(req.user_id, server_name, media_id)
    return json_response({})


async def delete_media(request: HttpRequest, server_name: str, media_id: str) -> HttpResponse:
    req = await _require_admin(request)
    deleted = await run(media_admin.do_delete_media)(req.user_id, server_name, media_id)
    return json_response({"deleted_media": deleted, "total": len(deleted)})


async def list_user_media(request: HttpRequest, user_id: str) -> HttpResponse:
    await _require_admin(request)
    offset, limit = _page(request)
    return json_response(await run(media_admin.user_media)(_user_id(user_id), offset, limit))


async def delete_user_media(request: HttpRequest, user_id: str) -> HttpResponse:
    req = await _require_admin(request)
    deleted = await run(media_admin.delete_user_media)(
        _user_id(user_id), actor=req.user_id, actor_type=ActorType.ADMIN, reason="admin")
    return json_response({"deleted_media": deleted, "total": len(deleted)})


async def usage(request: HttpRequest) -> HttpResponse:
    await _require_admin(request)
    offset, limit = _page(request)
    search = request.GET.get("search_term", "")
    return json_response(await run(media_admin.usage_by_user)(offset, limit, search))
