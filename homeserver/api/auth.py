"""Authenticating client requests by access token. Every authenticated view starts with

    requester = await require_auth(request)

Spec: client-server API "Using access tokens": the token comes in `Authorization: Bearer <token>`
or (deprecated) the `access_token` query parameter; none -> 401 M_MISSING_TOKEN; unknown,
revoked or deactivated -> 401 M_UNKNOWN_TOKEN; expired -> 401 M_UNKNOWN_TOKEN with
`soft_logout: true`. Lookups are one indexed query and nothing is cached, so a logout takes
effect on the very next request in every worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.http import HttpRequest

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts.sessions import authenticate_token


@dataclass(frozen=True)
class Requester:
    user_id: str
    device_id: str | None
    is_admin: bool
    access_token_id: int


def access_token_from(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MatrixError(401, Errcode.MISSING_TOKEN, "Invalid Authorization header")
        return token.strip()
    return request.GET.get("access_token") or None


def client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or ""


async def require_auth(request: HttpRequest) -> Requester:
    return await sync_to_async(authenticate)(request)


def authenticate(request: HttpRequest) -> Requester:
    """require_auth for code already on a database thread: a hot endpoint authenticates and
    does its work in one trip to the thread instead of two (see rooms.send)."""
    token = access_token_from(request)
    if token is None:
        raise MatrixError(401, Errcode.MISSING_TOKEN, "Missing access token")
    auth = authenticate_token(token, ip=client_ip(request))
    return Requester(auth.user_id, auth.device_id, auth.is_admin, auth.access_token_id)
