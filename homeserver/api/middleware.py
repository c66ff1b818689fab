"""One middleware for every Matrix endpoint: CORS, and MatrixError -> {"errcode", "error"}.

Spec: client-server API "Web Browser Clients" (CORS headers on every response, OPTIONS answered
without authentication) and "Standard error response".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from homeserver.api.responses import error_response
from homeserver.protocol.errors import Errcode, MatrixError

logger = logging.getLogger(__name__)

MATRIX_PREFIXES = ("/_matrix/", "/_synapse/", "/.well-known/matrix/")
FEDERATION_PREFIXES = ("/_matrix/federation/", "/_matrix/key/")

# Set by `palisade serve` per listener: which APIs this process serves (client, federation).
LISTENER_RESOURCES = frozenset(
    filter(None, os.environ.get("PALISADE_LISTENER_RESOURCES", "client,federation").split(","))
)


def _served_here(path: str) -> bool:
    if path.startswith(FEDERATION_PREFIXES):
        return "federation" in LISTENER_RESOURCES
    return "client" in LISTENER_RESOURCES or path.startswith("/.well-known/matrix/server")


CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
}

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def is_matrix_path(path: str) -> bool:
    return path.startswith(MATRIX_PREFIXES)


class MatrixMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_matrix_path(request.path):
            return await self.get_response(request)
        if not _served_here(request.path):
            response = error_response(404, Errcode.UNRECOGNIZED, "Not served on this listener")
        elif request.method == "OPTIONS":
            response = HttpResponse(status=204)
        else:
            try:
                response = await self.get_response(request)
            except MatrixError as e:  # raised before the view (e.g. URL resolution)
                response = error_response(e.status, e.errcode, e.error, **e.extra)
        for k, v in CORS_HEADERS.items():
            response[k] = v
        # What Django's security and clickjacking middlewares add to a page; Matrix paths are
        # served without them (homeserver/api/asgi_handler.py).
        for k, v in SECURITY_HEADERS.items():
            if k not in response:
                response[k] = v
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_matrix_path(request.path):
            return None
        if isinstance(exception, MatrixError):
            return error_response(
                exception.status, exception.errcode, exception.error, **exception.extra
            )
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, Errcode.UNKNOWN, "Internal server error")


def unrecognized(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404 for Matrix paths: M_UNRECOGNIZED (spec: unknown endpoints)."""
    if is_matrix_path(request.path):
        return error_response(404, Errcode.UNRECOGNIZED, "Unrecognized request")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Exception("not found"))
