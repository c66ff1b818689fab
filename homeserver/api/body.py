"""Request body parsing for the Matrix APIs.

Spec: client-server API "Standard error response": M_NOT_JSON (body is not valid JSON),
M_BAD_JSON (valid JSON but wrong shape), M_TOO_LARGE (request too large).
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest

from homeserver.protocol.errors import Errcode, MatrixError

MAX_JSON_BODY = 1024 * 1024  # Events are capped at 65,536 bytes separately.


def json_body(request: HttpRequest, *, allow_empty: bool = False) -> dict[str, Any]:
    raw = request.body
    if len(raw) > MAX_JSON_BODY:
        raise MatrixError(413, Errcode.TOO_LARGE, "Request body too large")
    if not raw.strip():
        if allow_empty:
            return {}
        raise MatrixError(400, Errcode.NOT_JSON, "Request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MatrixError(400, Errcode.NOT_JSON, "Content not JSON") from None
    if not isinstance(body, dict):
        raise MatrixError(400, Errcode.BAD_JSON, "Expected a JSON object")
    return body
