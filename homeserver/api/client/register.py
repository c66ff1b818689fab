"""Registration. Spec: client-server API "POST /register", "GET /register/available",
"GET /register/m.login.registration_token/validity"."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import client_ip
from homeserver.api.body import json_body
from homeserver.api.offload import run_password_service
from homeserver.api.responses import json_response
from homeserver.api.uia import renders_uia
from homeserver.services.accounts import register as register_service


@renders_uia
async def register(request: HttpRequest) -> HttpResponse:
    body = json_body(request)
    result = await run_password_service(
        register_service.do_register,
        body, kind=request.GET.get("kind", "user"), ip=client_ip(request)
    )
    return json_response(result)


async def available(request: HttpRequest) -> HttpResponse:
    result = await sync_to_async(register_service.check_available)(
        request.GET.get("username"), ip=client_ip(request)
    )
    return json_response(result)


async def token_validity(request: HttpRequest) -> HttpResponse:
    result = await sync_to_async(register_service.check_token_validity)(
        request.GET.get("token"), ip=client_ip(request)
    )
    return json_response(result)
