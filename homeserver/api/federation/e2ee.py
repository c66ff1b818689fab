"""Server-server E2EE endpoints: thin views over services.federation.e2ee_serve.

Spec: server-server API GET /_matrix/federation/v1/user/devices/{userId},
POST /_matrix/federation/v1/user/keys/query and /user/keys/claim."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.federation.auth import require_server
from homeserver.api.responses import json_response
from homeserver.services.federation import e2ee_serve

run = sync_to_async


async def user_devices(request: HttpRequest, user_id: str) -> HttpResponse:
    origin, _ = await require_server(request)
    return json_response(await run(e2ee_serve.user_devices)(origin, user_id))


async def keys_query(request: HttpRequest) -> HttpResponse:
    origin, body = await require_server(request)
    return json_response(await run(e2ee_serve.query_keys)(origin, body))


async def keys_claim(request: HttpRequest) -> HttpResponse:
    origin, body = await require_server(request)
    return json_response(await run(e2ee_serve.claim_keys)(origin, body))
