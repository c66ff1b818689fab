"""Room endpoints of the client-server API: thin views over services.rooms and services.events.

Spec: client-server API "Rooms", "Room membership", "Sending events", "Getting events".
"""

from __future__ import annotations

from urllib.parse import unquote

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import authenticate, require_auth
from homeserver.api.body import json_body
from homeserver.api.params import int_param, json_param
from homeserver.api.responses import json_response
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.events.redact import do_redact
from homeserver.services.events.send import do_client_send
from homeserver.services.rooms import history, membership, read
from homeserver.services.rooms.create import do_create_room
from homeserver.services.sync.filters import parse_event_filter
from homeserver.storage.state import rooms_for_user

run = sync_to_async


async def create_room(request: HttpRequest) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request, allow_empty=True)
    room_id = await run(do_create_room)(req.user_id, body)
    return json_response({"room_id": room_id})


async def join(request: HttpRequest, room_id_or_alias: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request, allow_empty=True)
    # Spec: POST /join/{roomIdOrAlias}: `via` (and the older `server_name`) name servers to
    # join through when the room is on another server.
    via = request.GET.getlist("via") + request.GET.getlist("server_name")
    room_id = await run(membership.do_join)(
        req.user_id, unquote(room_id_or_alias), body.get("reason"), via
    )
    return json_response({"room_id": room_id})


async def knock(request: HttpRequest, room_id_or_alias: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request, allow_empty=True)
    via = request.GET.getlist("via") + request.GET.getlist("server_name")
    room_id = await run(membership.do_knock)(
        req.user_id, unquote(room_id_or_alias), body.get("reason"), via
    )
    return json_response({"room_id": room_id})


async def _target_action(request: HttpRequest, room_id: str, action) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request)
    if "user_id" not in body:
        raise MatrixError(400, Errcode.MISSING_PARAM, "user_id is required")
    await run(action)(req.user_id, room_id, body["user_id"], body.get("reason"))
    return json_response({})


async def invite(request: HttpRequest, room_id: str) -> HttpResponse:
    return await _target_action(request, room_id, membership.do_invite)


async def kick(request: HttpRequest, room_id: str) -> HttpResponse:
    return await _target_action(request, room_id, membership.do_kick)


async def ban(request: HttpRequest, room_id: str) -> HttpResponse:
    return await _target_action(request, room_id, membership.do_ban)


async def unban(request: HttpRequest, room_id: str) -> HttpResponse:
    return await _target_action(request, room_id, membership.do_unban)


async def leave(request: HttpRequest, room_id: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request, allow_empty=True)
    await run(membership.do_leave)(req.user_id, room_id, body.get("reason"))
    return json_response({})


async def forget(request: HttpRequest, room_id: str) -> HttpResponse:
    req = await require_auth(request)
    await run(membership.do_forget)(req.user_id, room_id)
    return json_response({})


async def joined_rooms(request: HttpRequest) -> HttpResponse:
    req = await require_auth(request)
    rooms = await run(rooms_for_user)(req.user_id)
    return json_response({"joined_rooms": sorted(rooms)})


async def send(request: HttpRequest, room_id: str, event_type: str, txn_id: str) -> HttpResponse:
    def authenticated_send() -> str:  # the busiest endpoint: one trip to a database thread
        req = authenticate(request)
        content = json_body(request, allow_empty=True)
        return do_client_send(
            room_id=room_id,
            sender=req.user_id,
            event_type=event_type,
            content=content,
            device_id=req.device_id,
            txn_id=txn_id,
        )

    return json_response({"event_id": await run(authenticated_send)()})


async def put_state(
    request: HttpRequest, room_id: str, event_type: str, state_key: str = ""
) -> HttpResponse:
    req = await require_auth(request)
    content = json_body(request, allow_empty=True)
    event_id = await run(do_client_send)(
        room_id=room_id,
        sender=req.user_id,
        event_type=event_type,
        content=content,
        state_key=state_key,
    )
    return json_response({"event_id": event_id})


async def get_state_event(
    request: HttpRequest, room_id: str, event_type: str, state_key: str = ""
) -> HttpResponse:
    req = await require_auth(request)
    content = await run(read.state_event_content)(room_id, req.user_id, event_type, state_key)
    return json_response(content)


async def get_state(request: HttpRequest, room_id: str) -> HttpResponse:
    req = await require_auth(request)
    return json_response(await run(read.room_state)(room_id, req.user_id))


async def redact(request: HttpRequest, room_id: str, event_id: str, txn_id: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request, allow_empty=True)
    new_id = await run(do_redact)(
        room_id=room_id,
        sender=req.user_id,
        event_id=event_id,
        reason=body.get("reason"),
        device_id=req.device_id,
        txn_id=txn_id,
    )
    return json_response({"event_id": new_id})


async def get_event(request: HttpRequest, room_id: str, event_id: str) -> HttpResponse:
    req = await require_auth(request)
    return json_response(await run(read.get_event_for_user)(room_id, req.user_id, event_id))


async def messages(request: HttpRequest, room_id: str) -> HttpResponse:
    req = await require_auth(request)
    q = request.GET
    flt = parse_event_filter(json_param(q, "filter"))
    resp = await history.messages(
        room_id,
        req.user_id,
        from_token=q.get("from"),
        to_token=q.get("to"),
        direction=q.get("dir", "b"),
        limit=int_param(q, "limit", 10),
        flt=flt,
    )
    return json_response(resp)


async def context(request: HttpRequest, room_id: str, event_id: str) -> HttpResponse:
    req = await require_auth(request)
    q = request.GET
    flt = parse_event_filter(json_param(q, "filter"))
    resp = await run(read.context)(room_id, req.user_id, event_id, int_param(q, "limit", 10), flt)
    return json_response(resp)


async def relations(
    request: HttpRequest,
    room_id: str,
    event_id: str,
    rel_type: str | None = None,
    event_type: str | None = None,
) -> HttpResponse:
    req = await require_auth(request)
    q = request.GET
    resp = await run(read.relations)(
        room_id,
        req.user_id,
        event_id,
        rel_type,
        event_type,
        from_token=q.get("from"),
        to_token=q.get("to"),
        direction=q.get("dir", "b"),
        limit=int_param(q, "limit", 50),
    )
    return json_response(resp)


async def members(request: HttpRequest, room_id: str) -> HttpResponse:
    req = await require_auth(request)
    q = request.GET
    at = read.parse_token(q.get("at"), -1) if q.get("at") else None
    chunk = await run(read.members)(
        room_id,
        req.user_id,
        membership=q.get("membership"),
        not_membership=q.get("not_membership"),
        at=at,
    )
    return json_response({"chunk": chunk})


async def joined_members(request: HttpRequest, room_id: str) -> HttpResponse:
    req = await require_auth(request)
    return json_response({"joined": await run(read.joined_members)(room_id, req.user_id)})
