"""Authenticating inbound federation requests.

Order matters (REQUIREMENTS.md A_25534): the `federation_request` policy sees the origin named
in the X-Matrix header BEFORE the body is parsed, so an unlisted server gets 403 and nothing of
its request is processed; then the signature is checked against the origin's key (401 when
missing, malformed or wrong). Spec: server-server API "Request Authentication".
"""

from __future__ import annotations

from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest

from audit.actions import ActorType
from compliance.hooks import Hook, records_policy_denials
from compliance.hooks import run as run_policy
from homeserver.api.body import MAX_JSON_BODY
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.xmatrix import XMatrixError, parse_authorization, verify_request
from homeserver.services.federation.keyring import KeyNotFound, get_verify_key


@records_policy_denials
def check_origin_allowed(origin: str, path: str) -> None:
    run_policy(Hook.FEDERATION_REQUEST, {
        "actor": origin, "actor_type": ActorType.REMOTE_SERVER, "target": origin,
        "origin": origin, "path": path,
    })


def _raw_uri(request: HttpRequest) -> str:
    scope = getattr(request, "scope", None)
    if scope is not None:
        # The request target exactly as sent (the signature covers it undecoded).
        raw = scope.get("raw_path") or scope["path"]
        qs = scope.get("query_string") or ""
        raw = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        qs = qs.decode("latin-1") if isinstance(qs, bytes) else qs
        return raw + ("?" + qs if qs else "")
    return request.get_full_path()


def _unauthorized(message: str) -> MatrixError:
    return MatrixError(401, Errcode.UNAUTHORIZED, message)


async def require_server(request: HttpRequest) -> tuple[str, Any]:
    """(origin server name, parsed JSON body or None) of an authenticated request."""
    header = request.headers.get("Authorization")
    if not header:
        raise _unauthorized("Missing X-Matrix Authorization header")
    try:
        auth = parse_authorization(header)
    except XMatrixError as e:
        raise _unauthorized(str(e)) from None
    await sync_to_async(check_origin_allowed)(auth.origin, request.path)
    try:
        key = await get_verify_key(auth.origin, auth.key_id)
    except KeyNotFound as e:
        raise _unauthorized(str(e)) from None
    raw = request.body
    if len(raw) > MAX_JSON_BODY * 8:
        raise MatrixError(413, Errcode.TOO_LARGE, "Request body too large")
    content = None
    if raw.strip():
        try:
            content = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise MatrixError(400, Errcode.NOT_JSON, "Content not JSON") from None
    try:
        verify_request(auth, request.method or "GET", _raw_uri(request),
                       settings.PALISADE.server_name, content, key)
    except XMatrixError as e:
        raise _unauthorized(str(e)) from None
    return auth.origin, content
