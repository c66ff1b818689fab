"""HTTP conventions of the authorization server's endpoints: OAuth error bodies (RFC 6749
section 5.2), no caching of token responses, and CORS for browser-based clients (the spec's
"Web Browser Clients" rules, applied to /_palisade/oauth2/ as to /_matrix/)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from homeserver.api.middleware import CORS_HEADERS
from idp.oidc.providers import oauth2_enabled


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def oauth_json(body: Any, status: int = 200) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def endpoint(**handlers: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> Any:
    """Method dispatch + CORS + OAuthError rendering; 404 while the OAuth 2.0 API is off."""
    allowed = {m.upper(): h for m, h in handlers.items()}

    @csrf_exempt
    async def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
        elif not oauth2_enabled():
            response = oauth_json({"error": "not_found",
                                   "error_description": "The OAuth 2.0 API is not enabled"}, 404)
        elif request.method not in allowed:
            response = oauth_json({"error": "invalid_request",
                                   "error_description": f"{request.method} not allowed"}, 405)
        else:
            try:
                response = await allowed[request.method](request, *args, **kwargs)
            except OAuthError as e:
                response = oauth_json({"error": e.error, "error_description": e.description},
                                      e.status)
        for k, v in CORS_HEADERS.items():
            response[k] = v
        return response

    return view
