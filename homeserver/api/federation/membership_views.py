"""Server-server membership handshakes: thin views over services.federation.membership_serve
and services.federation.invites.

Spec: server-server API "Joining Rooms", "Knocking upon a room", "Inviting to a room",
"Leaving Rooms (Rejecting Invites)".
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.federation.auth import require_server
from homeserver.api.responses import json_response
from homeserver.services.federation import invites, membership_serve

run = sync_to_async


async def make_join(request: HttpRequest, room_id: str, user_id: str) -> HttpResponse:
    origin, _ = await require_server(request)
    return json_response(await run(membership_serve.make_membership)(
        origin, room_id, user_id, "join", request.GET.getlist("ver")))


async def make_knock(request: HttpRequest, room_id: str, user_id: str) -> HttpResponse:
    origin, _ = await require_server(request)
    return json_response(await run(membership_serve.make_membership)(
        origin, room_id, user_id, "knock", request.GET.getlist("ver")))


async def make_leave(request: HttpRequest, room_id: str, user_id: str) -> HttpResponse:
    origin, _ = await require_server(request)
    return json_response(await run(membership_serve.make_membership)(
        origin, room_id, user_id, "leave"))


async def send_join(request: HttpRequest, room_id: str, event_id: str) -> HttpResponse:
    origin, body = await require_server(request)
    return json_response(await membership_serve.send_join(origin, room_id, event_id, body))


async def send_leave(request: HttpRequest, room_id: str, event_id: str) -> HttpResponse:
    origin, body = await require_server(request)
    return json_response(await membership_serve.send_leave(origin, room_id, event_id, body))


async def send_knock(request: HttpRequest, room_id: str, event_id: str) -> HttpResponse:
    origin, body = await require_server(request)
    return json_response(await membership_serve.send_knock(origin, room_id, event_id, body))


async def invite(request: HttpRequest, room_id: str, event_id: str) -> HttpResponse:
    origin, body = await require_server(request)
    return json_response(await invites.receive_invite(origin, room_id, event_id, body))
