"""Room upgrades, tags, timestamp lookup, TURN credentials and OpenID tokens: thin views.

Spec: client-server API "Room Upgrades", "Room Tagging", GET /rooms/{roomId}/timestamp_to_event,
"Voice over IP" and "OpenID".
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.body import json_body
from homeserver.api.responses import json_response
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.directory import openid, tags, turn
from homeserver.services.rooms import read
from homeserver.services.rooms.upgrade import do_upgrade_room

run = sync_to_async


async def upgrade(request: HttpRequest, room_id: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request)
    new_room = await run(do_upgrade_room)(req.user_id, room_id, body)
    return json_response({"replacement_room": new_room})


async def get_tags(request: HttpRequest, user_id: str, room_id: str) -> HttpResponse:
    req = await require_auth(request)
    return json_response(await run(tags.get_tags)(req.user_id, user_id, room_id))


async def put_tag(request: HttpRequest, user_id: str, room_id: str, tag: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request)
    await run(tags.do_put_tag)(req.user_id, user_id, room_id, tag, body)
    return json_response({})


async def delete_tag(request: HttpRequest, user_id: str, room_id: str, tag: str) -> HttpResponse:
    req = await require_auth(request)
    await run(tags.do_delete_tag)(req.user_id, user_id, room_id, tag)
    return json_response({})


async def timestamp_to_event(request: HttpRequest, room_id: str) -> HttpResponse:
    req = await require_auth(request)
    q = request.GET
    for name in ("ts", "dir"):
        if not q.get(name):
            raise MatrixError(400, Errcode.MISSING_PARAM, f"{name} is required")
    try:
        ts = int(q["ts"])
    except ValueError:
        raise MatrixError(400, Errcode.INVALID_PARAM, "ts must be an integer") from None
    resp = await run(read.timestamp_to_event)(room_id, req.user_id, ts, q["dir"])
    return json_response(resp)


async def turn_server(request: HttpRequest) -> HttpResponse:
    req = await require_auth(request)
    return json_response(turn.turn_credentials(req.user_id))


async def request_openid_token(request: HttpRequest, user_id: str) -> HttpResponse:
    req = await require_auth(request)
    json_body(request, allow_empty=True)  # Spec: an empty object, reserved for the future.
    return json_response(await run(openid.do_request_token)(req.user_id, user_id))
