"""Rendering the user-interactive auth 401 exactly as the spec shows it.

Spec: client-server API "User-interactive API in the REST API": the first 401 carries only
flows/params/session (no errcode: clients show an errcode to the user as a failed stage).
"""

from __future__ import annotations

import functools
from typing import Any

from django.http import HttpRequest, HttpResponse

from homeserver.api.responses import json_response
from homeserver.api.routing import View
from homeserver.services.accounts.uia import UIARequired


def renders_uia(view: View) -> View:
    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return await view(request, *args, **kwargs)
        except UIARequired as e:
            return json_response(e.body, status=401)

    return wrapper


def operation_of(request: HttpRequest) -> str:
    """What a UIA session is bound to: the method and path of the request it authorises."""
    return f"{request.method} {request.path}"
