"""Method dispatch for Matrix endpoints: an unsupported method is 405 M_UNRECOGNIZED.

Spec: client-server API "Common error codes" (M_UNRECOGNIZED: "the server did not understand the
request ... a 405 when the endpoint is known but the method is not").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from homeserver.api.responses import error_response
from homeserver.protocol.errors import Errcode

View = Callable[..., Awaitable[HttpResponse]]


def methods(**handlers: View) -> View:
    allowed = {m.upper(): h for m, h in handlers.items()}
    if "GET" in allowed:
        allowed.setdefault("HEAD", allowed["GET"])

    @csrf_exempt
    async def dispatch(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        handler = allowed.get(request.method or "")
        if handler is None:
            return error_response(405, Errcode.UNRECOGNIZED, f"{request.method} not supported here")
        return await handler(request, *args, **kwargs)

    return dispatch
