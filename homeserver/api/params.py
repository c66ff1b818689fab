"""Query-string parameters with Matrix errors for bad values."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import QueryDict

from homeserver.protocol.errors import Errcode, MatrixError


def int_param(q: QueryDict, name: str, default: int) -> int:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise MatrixError(400, Errcode.INVALID_PARAM, f"{name} must be an integer") from None


def bool_param(q: QueryDict, name: str, default: bool = False) -> bool:
    raw = q.get(name)
    if raw is None:
        return default
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    raise MatrixError(400, Errcode.INVALID_PARAM, f"{name} must be true or false")


def json_param(q: QueryDict, name: str) -> Any:
    raw = q.get(name)
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MatrixError(400, Errcode.NOT_JSON, f"{name} is not valid JSON") from None
