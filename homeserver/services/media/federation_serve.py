"""Serving this server's media to other servers.

Spec: server-server API "Content Repository", GET /_matrix/federation/v1/media/download/
{mediaId} and GET /_matrix/federation/v1/media/thumbnail/{mediaId}: the media ID is one of
ours (the path has no server name); `timeout_ms` waits for a pending upload as the client
endpoints do (504 M_NOT_YET_UPLOADED). Local media only: unknown, expired or quarantined media
is 404 M_NOT_FOUND, exactly as for local clients; this server never passes on media it cached
from a third server. Thumbnails are the local thumbnail service's (services/media/thumbnails.py).
The caller (api/federation/media.py) has authenticated the requesting server and checked it
against the federation list.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings

from homeserver.services.media import thumbnails
from homeserver.services.media.download import Servable, servable_download, wait_for_content


async def serve_download(media_id: str, timeout_ms: int) -> Servable:
    record = await wait_for_content(settings.PALISADE.server_name, media_id, timeout_ms)
    return await sync_to_async(servable_download)(record, None)


async def serve_thumbnail(media_id: str, req: thumbnails.ThumbnailRequest,
                          timeout_ms: int) -> Servable:
    record = await wait_for_content(settings.PALISADE.server_name, media_id, timeout_ms)
    return await thumbnails.thumbnail(record, req)
