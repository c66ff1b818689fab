"""Server-side key backups. Spec: client-server API "Server-side key backups" (key_backup.yaml).
The backup version of /room_keys/keys comes in the `version` query parameter."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.body import json_body
from homeserver.api.responses import json_response
from homeserver.services.e2ee import backup


async def create_version(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request)
    return json_response(await sync_to_async(backup.do_create_version)(requester.user_id, body))


async def get_version(request: HttpRequest, version: str | None = None) -> HttpResponse:
    requester = await require_auth(request)
    return json_response(await sync_to_async(backup.get_version)(requester.user_id, version))


async def put_version(request: HttpRequest, version: str) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request)
    await sync_to_async(backup.do_update_version)(requester.user_id, version, body)
    return json_response({})


async def delete_version(request: HttpRequest, version: str) -> HttpResponse:
    requester = await require_auth(request)
    await sync_to_async(backup.do_delete_version)(requester.user_id, version)
    return json_response({})


def _put(user_id: str, version: str | None, body: dict, room_id: str | None,
         session_id: str | None) -> dict:
    keys = backup.parse_upload(body, room_id, session_id)
    return backup.do_put_keys(user_id, version, keys)


async def put_keys(request: HttpRequest, room_id: str | None = None,
                   session_id: str | None = None) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request)
    return json_response(await sync_to_async(_put)(
        requester.user_id, request.GET.get("version"), body, room_id, session_id
    ))


async def get_keys(request: HttpRequest, room_id: str | None = None,
                   session_id: str | None = None) -> HttpResponse:
    requester = await require_auth(request)
    return json_response(await sync_to_async(backup.get_keys)(
        requester.user_id, request.GET.get("version"), room_id, session_id
    ))


async def delete_keys(request: HttpRequest, room_id: str | None = None,
                      session_id: str | None = None) -> HttpResponse:
    requester = await require_auth(request)
    return json_response(await sync_to_async(backup.do_delete_keys)(
        requester.user_id, request.GET.get("version"), room_id, session_id
    ))
