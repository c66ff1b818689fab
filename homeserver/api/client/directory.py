"""Room aliases, the published room directory and the user directory: thin views.

Spec: client-server API "Room aliases", "Published room directory", "User Directory".
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import access_token_from, require_auth
from homeserver.api.body import json_body
from homeserver.api.params import int_param
from homeserver.api.responses import json_response
from homeserver.services.directory import aliases, public_rooms, user_directory

run = sync_to_async


async def put_alias(request: HttpRequest, room_alias: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request)
    await run(aliases.do_create_alias)(
        req.user_id, room_alias, body, is_server_admin=req.is_admin
    )
    return json_response({})


async def get_alias(request: HttpRequest, room_alias: str) -> HttpResponse:
    # Spec: resolving an alias needs no access token.
    return json_response(await run(aliases.resolve)(room_alias))


async def delete_alias(request: HttpRequest, room_alias: str) -> HttpResponse:
    req = await require_auth(request)
    await run(aliases.do_delete_alias)(req.user_id, room_alias, is_server_admin=req.is_admin)
    return json_response({})


async def room_aliases(request: HttpRequest, room_id: str) -> HttpResponse:
    req = await require_auth(request)
    found = await run(aliases.local_aliases)(req.user_id, room_id, is_server_admin=req.is_admin)
    return json_response({"aliases": found})


async def get_visibility(request: HttpRequest, room_id: str) -> HttpResponse:
    return json_response(await run(public_rooms.get_visibility)(room_id))


async def put_visibility(request: HttpRequest, room_id: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request, allow_empty=True)
    await run(public_rooms.do_set_visibility)(
        req.user_id, room_id, body, is_server_admin=req.is_admin
    )
    return json_response({})


async def _directory_access(request: HttpRequest, *, always_auth: bool) -> None:
    public_rooms.check_directory_enabled()
    if always_auth or settings.PALISADE.directory.public_rooms_require_auth:
        await require_auth(request)
    elif access_token_from(request) is not None:
        await require_auth(request)  # A token that is sent must be valid.


async def get_public_rooms(request: HttpRequest) -> HttpResponse:
    await _directory_access(request, always_auth=False)
    q = request.GET
    resp = await run(public_rooms.list_public_rooms)(
        limit=int_param(q, "limit", 0), since=q.get("since"), server=q.get("server")
    )
    return json_response(resp)


async def post_public_rooms(request: HttpRequest) -> HttpResponse:
    await _directory_access(request, always_auth=True)
    body = json_body(request, allow_empty=True)
    kwargs = public_rooms.check_query_body(body)
    resp = await run(public_rooms.list_public_rooms)(server=request.GET.get("server"), **kwargs)
    return json_response(resp)


async def search_users(request: HttpRequest) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request)
    return json_response(await run(user_directory.search)(req.user_id, body))
