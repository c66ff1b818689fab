"""Federation OpenID userinfo. Spec: server-server API "OpenID",
GET /_matrix/federation/v1/openid/userinfo?access_token=...

Called by third-party services, not Matrix servers, so there is no X-Matrix request signature:
the OpenID token is the credential (and only an OpenID token is: A_25479)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.responses import json_response
from homeserver.services.directory.openid import userinfo as userinfo_for


async def userinfo(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("access_token")
    return json_response(await sync_to_async(userinfo_for)(token))
