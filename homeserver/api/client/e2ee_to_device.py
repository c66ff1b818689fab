"""PUT /sendToDevice/{eventType}/{txnId}. Spec: client-server API "Send-to-Device messaging"."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.body import json_body
from homeserver.api.responses import json_response
from homeserver.services.e2ee.to_device import do_send_to_device


async def send_to_device(request: HttpRequest, event_type: str, txn_id: str) -> HttpResponse:
    requester = await require_auth(request)
    body = json_body(request)
    await sync_to_async(do_send_to_device)(
        requester.user_id, requester.device_id or "", event_type, txn_id, body
    )
    return json_response({})
