"""Typing, receipts, read markers and presence: thin views over services.ephemeral and
services.presence. Spec: client-server API "Typing Notifications", "Receipts", "Read and unread
markers", "Presence"."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.body import json_body
from homeserver.api.responses import json_response
from homeserver.services.ephemeral import receipts, typing
from homeserver.services.presence import presence


async def put_typing(request: HttpRequest, room_id: str, user_id: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request)
    await typing.set_typing(req.user_id, room_id, user_id, body)
    return json_response({})


async def post_receipt(request: HttpRequest, room_id: str, receipt_type: str,
                       event_id: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request, allow_empty=True)
    await sync_to_async(receipts.do_post_receipt)(req.user_id, room_id, receipt_type, event_id,
                                                  body)
    return json_response({})


async def post_read_markers(request: HttpRequest, room_id: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request)
    await sync_to_async(receipts.do_read_markers)(req.user_id, room_id, body)
    return json_response({})


async def put_presence(request: HttpRequest, user_id: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request)
    await sync_to_async(presence.do_set_presence)(req.user_id, user_id, body)
    return json_response({})


async def get_presence(request: HttpRequest, user_id: str) -> HttpResponse:
    req = await require_auth(request)
    return json_response(await sync_to_async(presence.get_presence)(req.user_id, user_id))
