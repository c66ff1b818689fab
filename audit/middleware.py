"""Give every request an id and remember its source address for the audit records it causes.

The request id comes from an incoming `X-Request-ID` header when it is a plausible id (so a
reverse proxy's id ties its access log to our audit records), otherwise a fresh one; it is
echoed on the response. The source address is REMOTE_ADDR: behind a reverse proxy, configure
the proxy (or a trusted-proxy middleware) to set it, never trust X-Forwarded-For blindly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from audit.context import AuditContext, reset_context, set_context

REQUEST_ID_HEADER = "X-Request-ID"
_PLAUSIBLE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{8,128}")


def request_context(request: HttpRequest) -> AuditContext:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _PLAUSIBLE_ID.fullmatch(incoming) else uuid.uuid4().hex
    return AuditContext(request_id, request.META.get("REMOTE_ADDR", "")[:64])


class AuditContextMiddleware:
    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if self._async:
            return self._acall(request)
        ctx = request_context(request)
        token = set_context(ctx)
        try:
            response = self.get_response(request)
        finally:
            reset_context(token)
        response[REQUEST_ID_HEADER] = ctx.request_id
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        ctx = request_context(request)
        token = set_context(ctx)
        try:
            response = await self.get_response(request)  # type: ignore[misc]
        finally:
            reset_context(token)
        response[REQUEST_ID_HEADER] = ctx.request_id
        return response
