"""End-to-end encryption keys. Spec: client-server API "Key management API" (keys.yaml) and
"Cross-signing" (cross_signing.yaml)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.body import json_body
from homeserver.api.offload import run_password_service
from homeserver.api.responses import json_response
from homeserver.api.uia import operation_of, renders_uia
from homeserver.services.e2ee import cross_signing, device_keys
from homeserver.services.e2ee.device_lists import key_changes_between


async def upload_keys(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request, allow_empty=True)
    return json_response(await sync_to_async(device_keys.do_upload_keys)(
        requester.user_id, requester.device_id or "", body
    ))


async def query_keys(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request)
    return json_response(await sync_to_async(device_keys.query_keys)(requester.user_id, body))


async def claim_keys(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request)
    return json_response(await sync_to_async(device_keys.do_claim_keys)(requester.user_id, body))


async def key_changes(request: HttpRequest) -> HttpResponse:
    """Spec: GET /keys/changes: `from` and `to` are /sync next_batch tokens."""
    requester = await require_auth(request)
    q = request.GET
    return json_response(
        await sync_to_async(key_changes_between)(requester.user_id, q.get("from"), q.get("to"))
    )


@renders_uia
async def upload_cross_signing_keys(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request, allow_empty=True)
    # May check a password (user-interactive auth): off the shared ORM thread.
    await run_password_service(cross_signing.do_upload_cross_signing_keys, requester.user_id,
                               body, operation=operation_of(request))
    return json_response({})


async def upload_signatures(request: HttpRequest) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request, allow_empty=True)
    return json_response(
        await sync_to_async(cross_signing.do_upload_signatures)(requester.user_id, body)
    )
