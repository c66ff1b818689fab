"""GET /sync and the filter-aware parameters. Spec: client-server API "Syncing"."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.params import bool_param, int_param
from homeserver.api.responses import json_response
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.sync.filters import parse_inline_or_stored
from homeserver.services.sync.sync import SyncRequest, parse_since, sync


async def get_sync(request: HttpRequest) -> HttpResponse:
    req = await require_auth(request)
    q = request.GET
    set_presence = q.get("set_presence", "online")
    if set_presence not in ("online", "offline", "unavailable"):
        raise MatrixError(
            400, Errcode.INVALID_PARAM, "set_presence must be online, offline or unavailable"
        )
    from homeserver.storage.filters import load_filter

    flt = await sync_to_async(parse_inline_or_stored)(
        q.get("filter"), lambda fid: load_filter(req.user_id, fid)
    )
    sreq = SyncRequest(
        user_id=req.user_id,
        device_id=req.device_id or "",
        since=parse_since(q.get("since")),
        filter=flt,
        full_state=bool_param(q, "full_state"),
        use_state_after=bool_param(q, "use_state_after"),
    )
    timeout = int_param(q, "timeout", 0)
    from homeserver.services.presence.presence import bump_for_sync

    await sync_to_async(bump_for_sync)(req.user_id, set_presence)
    return json_response(await sync(sreq, timeout))


async def capabilities(request: HttpRequest) -> HttpResponse:
    """Spec: GET /capabilities."""
    await require_auth(request)
    from django.conf import settings

    from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS

    return json_response(
        {
            "capabilities": {
                "m.change_password": {"enabled": True},
                "m.room_versions": {
                    "default": settings.PALISADE.rooms.default_version,
                    "available": {v: "stable" for v in KNOWN_ROOM_VERSIONS},
                },
                "m.set_displayname": {"enabled": True},
                "m.set_avatar_url": {"enabled": True},
                "m.3pid_changes": {"enabled": False},
                "m.get_login_token": {"enabled": False},
            }
        }
    )
