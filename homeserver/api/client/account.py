"""The requester's own account: whoami, password change, deactivation.
Spec: client-server API "GET /account/whoami", "POST /account/password",
"POST /account/deactivate"."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.body import json_body
from homeserver.api.offload import run_password_service
from homeserver.api.responses import json_response
from homeserver.api.uia import operation_of, renders_uia
from homeserver.services.accounts import account as account_service


async def whoami(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    body = {"user_id": requester.user_id, "is_guest": False}
    if requester.device_id:
        body["device_id"] = requester.device_id
    return json_response(body)


@renders_uia
async def change_password(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request)
    await run_password_service(
        account_service.do_change_password,
        requester.user_id, requester.device_id, body, operation=operation_of(request)
    )
    return json_response({})


@renders_uia
async def deactivate(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request, allow_empty=True)
    result = await run_password_service(
        account_service.do_deactivate,
        requester.user_id, body, operation=operation_of(request)
    )
    return json_response(result)
