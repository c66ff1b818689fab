"""Device management. Spec: client-server API "Device management"."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.body import json_body
from homeserver.api.offload import run_password_service
from homeserver.api.responses import json_response
from homeserver.api.uia import operation_of, renders_uia
from homeserver.services.accounts import devices as device_service


async def list_devices(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    return json_response(await sync_to_async(device_service.list_devices)(requester.user_id))


async def get_device(request: HttpRequest, device_id: str) -> HttpResponse:
    requester = await require_auth(request)
    return json_response(
        await sync_to_async(device_service.get_device)(requester.user_id, device_id)
    )


async def put_device(request: HttpRequest, device_id: str) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request)
    await sync_to_async(device_service.do_update_device)(requester.user_id, device_id, body)
    return json_response({})


@renders_uia
async def delete_device(request: HttpRequest, device_id: str) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request, allow_empty=True)
    await run_password_service(
        device_service.do_delete_devices,
        requester.user_id, [device_id], body.get("auth"), operation=operation_of(request)
    )
    return json_response({})


@renders_uia
async def delete_devices(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request)
    device_ids = device_service.check_device_list(body.get("devices"))
    await run_password_service(
        device_service.do_delete_devices,
        requester.user_id, device_ids, body.get("auth"), operation=operation_of(request)
    )
    return json_response({})
