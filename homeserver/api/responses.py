"""JSON responses for the Matrix APIs (orjson; the hot paths render through here)."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse


def json_response(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


def error_response(status: int, errcode: str, error: str, **extra: Any) -> HttpResponse:
    return json_response({"errcode": errcode, "error": error, **extra}, status=status)
