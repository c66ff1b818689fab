"""Server-server read endpoints: thin views over services.federation.serve."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.federation.auth import require_server
from homeserver.api.responses import json_response
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.federation import serve

run = sync_to_async


async def get_event(request: HttpRequest, event_id: str) -> HttpResponse:
    origin, _ = await require_server(request)
    return json_response(await run(serve.get_event)(origin, event_id))


def _event_id_param(request: HttpRequest) -> str:
    event_id = request.GET.get("event_id")
    if not event_id:
        raise MatrixError(400, Errcode.MISSING_PARAM, "event_id is required")
    return event_id


async def state_ids(request: HttpRequest, room_id: str) -> HttpResponse:
    origin, _ = await require_server(request)
    return json_response(await run(serve.state_ids)(origin, room_id, _event_id_param(request)))


async def state(request: HttpRequest, room_id: str) -> HttpResponse:
    origin, _ = await require_server(request)
    return json_response(await run(serve.state)(origin, room_id, _event_id_param(request)))


async def event_auth(request: HttpRequest, room_id: str, event_id: str) -> HttpResponse:
    origin, _ = await require_server(request)
    return json_response(await run(serve.event_auth)(origin, room_id, event_id))


async def query_directory(request: HttpRequest) -> HttpResponse:
    await require_server(request)
    alias = request.GET.get("room_alias")
    if not alias:
        raise MatrixError(400, Errcode.MISSING_PARAM, "room_alias is required")
    return json_response(await run(serve.query_directory)(alias))


async def query_profile(request: HttpRequest) -> HttpResponse:
    await require_server(request)
    user_id = request.GET.get("user_id")
    if not user_id:
        raise MatrixError(400, Errcode.MISSING_PARAM, "user_id is required")
    return json_response(await run(serve.query_profile)(user_id, request.GET.get("field")))


async def send_transaction(request: HttpRequest, txn_id: str) -> HttpResponse:
    """Spec: PUT /_matrix/federation/v1/send/{txnId}."""
    from homeserver.services.federation_ingest.pipeline import receive_transaction

    origin, body = await require_server(request)
    return json_response(await receive_transaction(origin, txn_id, body))


async def get_missing_events(request: HttpRequest, room_id: str) -> HttpResponse:
    origin, body = await require_server(request)
    return json_response(await run(serve.get_missing_events)(origin, room_id, body))


async def backfill(request: HttpRequest, room_id: str) -> HttpResponse:
    origin, _ = await require_server(request)
    from_ids = request.GET.getlist("v")
    if not from_ids:
        raise MatrixError(400, Errcode.MISSING_PARAM, "v is required")
    try:
        limit = int(request.GET.get("limit", "10"))
    except ValueError:
        raise MatrixError(400, Errcode.INVALID_PARAM, "limit must be an integer") from None
    return json_response(await run(serve.backfill)(origin, room_id, from_ids, limit))
