"""GET/POST /_matrix/federation/v1/publicRooms: thin views over
services.federation.public_rooms (spec: server-server API "Published Room Directory")."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.federation.auth import require_server
from homeserver.api.responses import json_response
from homeserver.services.federation import public_rooms


async def get_public_rooms(request: HttpRequest) -> HttpResponse:
    origin, _ = await require_server(request)
    return json_response(await sync_to_async(public_rooms.list_for_server)(origin, request.GET))


async def post_public_rooms(request: HttpRequest) -> HttpResponse:
    origin, body = await require_server(request)
    return json_response(await sync_to_async(public_rooms.query_for_server)(origin, body))
