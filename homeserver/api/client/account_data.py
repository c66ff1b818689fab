"""Account data and filters. Spec: client-server API "Client Config" and "Filtering"."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.body import json_body
from homeserver.api.responses import json_response
from homeserver.services.accounts import account_data as data_service
from homeserver.services.accounts import filters as filter_service


async def get_account_data(
    request: HttpRequest, user_id: str, data_type: str, room_id: str | None = None
) -> HttpResponse:
    requester = await require_auth(request)
    content = await sync_to_async(data_service.get_account_data)(
        requester.user_id, user_id, data_type, room_id
    )
    return json_response(content)


async def put_account_data(
    request: HttpRequest, user_id: str, data_type: str, room_id: str | None = None
) -> HttpResponse:
    requester = await require_auth(request)
    content = json_body(request, allow_empty=False)
    await sync_to_async(data_service.do_put_account_data)(
        requester.user_id, user_id, data_type, content, room_id
    )
    return json_response({})


async def create_filter(request: HttpRequest, user_id: str) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request)
    result = await sync_to_async(filter_service.do_create_filter)(requester.user_id, user_id, body)
    return json_response(result)


async def get_filter(request: HttpRequest, user_id: str, filter_id: str) -> HttpResponse:
    requester = await require_auth(request)
    result = await sync_to_async(filter_service.get_filter)(requester.user_id, user_id, filter_id)
    return json_response(result)
