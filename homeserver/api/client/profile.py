"""Profiles. Spec: client-server API "Profiles". Lookups need an access token: this server
does not answer anonymous questions about who has an account (spec: 403/404 are allowed)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.body import json_body
from homeserver.api.responses import json_response
from homeserver.services.accounts import profile as profile_service


async def get_profile(request: HttpRequest, user_id: str) -> HttpResponse:
    await require_auth(request)
    return json_response(await sync_to_async(profile_service.get_profile)(user_id))


def field_views(field: str) -> tuple:
    """(GET view, PUT view) for one profile field."""

    async def get_field(request: HttpRequest, user_id: str) -> HttpResponse:
        await require_auth(request)
        return json_response(await sync_to_async(profile_service.get_profile_field)(user_id, field))

    async def put_field(request: HttpRequest, user_id: str) -> HttpResponse:
        requester = await require_auth(request)
        body = json_body(request)
        await sync_to_async(profile_service.do_set_profile_field)(
            requester.user_id, user_id, field, body
        )
        return json_response({})

    return get_field, put_field


get_displayname, put_displayname = field_views("displayname")
get_avatar_url, put_avatar_url = field_views("avatar_url")
