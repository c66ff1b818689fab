"""Shared-secret registration, Synapse-compatible: GET/POST /_synapse/admin/v1/register.
See services/accounts/shared_secret.py for the protocol."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.body import json_body
from homeserver.api.offload import run_password_service
from homeserver.api.responses import json_response
from homeserver.services.accounts import shared_secret


async def get_nonce(request: HttpRequest) -> HttpResponse:
    return json_response(await sync_to_async(shared_secret.new_nonce)())


async def post_register(request: HttpRequest) -> HttpResponse:
    body = json_body(request)
    return json_response(await run_password_service(shared_secret.do_shared_secret_register, body))
