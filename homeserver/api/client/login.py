"""Login, token refresh and logout. Spec: client-server API "Login" (GET/POST /login),
"POST /refresh", "POST /logout", "POST /logout/all"."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import client_ip, require_auth
from homeserver.api.body import json_body
from homeserver.api.offload import run_password_service
from homeserver.api.responses import json_response
from homeserver.services.accounts import login as login_service
from homeserver.services.accounts import sessions


async def get_login(request: HttpRequest) -> HttpResponse:
    return json_response(login_service.login_flows())


async def post_login(request: HttpRequest) -> HttpResponse:
    body = json_body(request)
    result = await run_password_service(login_service.do_login, body,
                                        ip=client_ip(request))
    return json_response(result)


async def post_refresh(request: HttpRequest) -> HttpResponse:
    body = json_body(request)
    return json_response(await sync_to_async(sessions.do_refresh)(body.get("refresh_token")))


async def post_logout(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    await sync_to_async(sessions.do_logout)(requester.user_id, requester.device_id or "")
    return json_response({})


async def post_logout_all(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    await sync_to_async(sessions.do_logout_all)(requester.user_id)
    return json_response({})
