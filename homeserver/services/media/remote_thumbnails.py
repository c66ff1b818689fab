"""Thumbnails of other servers' media, made here from the cached copy.

Spec: client-server API "GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}". The
origin's own thumbnails are not fetched: the whole content is fetched and cached once
(services/media/remote.py, with the federation list and size limit), and thumbnails are made
from it by the same rules and code as for local media (services/media/thumbnails.py: sizes,
methods, sniffed types, image-bomb guard), and kept in their own table. The one difference the
spec makes: remote content too large to thumbnail is 502 M_TOO_LARGE (local: 413).
"""

from __future__ import annotations

import io
import secrets

from asgiref.sync import sync_to_async
from django.conf import settings

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.media import images, thumbnails
from homeserver.services.media.download import Servable, open_stored
from homeserver.services.media.remote import cached_remote
from homeserver.services.media.upload import now_ms
from homeserver.storage import remote_media as store
from homeserver.storage.media import ThumbnailRecord
from homeserver.storage.media_files import media_backend
from homeserver.storage.media_staging import discard, stage_bytes


def _thumb_key(record: store.RemoteMediaRecord, width: int, height: int,
               req: thumbnails.ThumbnailRequest) -> str:
    # Under the cached copy's own (per-fetch) name; a random tag per generated file, so two
    # racing generations never share a file.
    tag = "-a" if req.animated else ""
    name = record.file_key.removeprefix("remote/")
    return (f"remote_thumbnails/{name}/{width}x{height}-{req.method}{tag}-"
            f"{secrets.token_hex(4)}")


def _cached(record: store.RemoteMediaRecord, width: int, height: int,
            req: thumbnails.ThumbnailRequest) -> Servable | None:
    thumb = store.get_thumbnail(record.server_name, record.media_id, width, height,
                                req.method, req.animated)
    if thumb is None:
        return None
    try:
        file = media_backend().open(thumb.file_key)
    except FileNotFoundError:
        return None
    return Servable(file, thumb.size, thumb.content_type,
                    thumbnails._disposition(thumb.content_type))


def _store(record: store.RemoteMediaRecord, width: int, height: int,
           req: thumbnails.ThumbnailRequest, thumb: images.Thumb, configured: bool) -> None:
    cap = settings.PALISADE.media.max_thumbnails_per_media
    if not configured and store.count_thumbnails(record.server_name, record.media_id) >= cap:
        return
    key = _thumb_key(record, width, height, req)
    backend = media_backend()
    staged = stage_bytes(thumb.data)
    try:
        backend.put(key, staged)
        row = ThumbnailRecord(width, height, req.method, req.animated, thumb.content_type,
                              len(thumb.data), key)
        if not store.insert_thumbnail(record.server_name, record.media_id, row, now_ms()):
            backend.delete(key)
    except BaseException:
        backend.delete(key)
        raise
    finally:
        discard(staged)


def _render(record: store.RemoteMediaRecord, width: int, height: int,
            req: thumbnails.ThumbnailRequest) -> images.Thumb | images.Original:
    try:
        # The local renderer reads only the record's file_key.
        return thumbnails._render(record, width, height, req)  # type: ignore[arg-type]
    except MatrixError as e:
        if e.errcode == Errcode.TOO_LARGE:
            # Spec: "502: The remote content is too large for the server to thumbnail."
            raise MatrixError(502, Errcode.TOO_LARGE, e.error) from None
        raise


async def remote_thumbnail(user_id: str, server_name: str, media_id: str,
                           req: thumbnails.ThumbnailRequest, timeout_ms: int) -> Servable:
    record = await cached_remote(user_id, server_name, media_id, timeout_ms)
    if record.sniffed_type not in thumbnails.THUMBNAILABLE:
        raise thumbnails.cannot_thumbnail()
    width, height, configured = thumbnails.target_size(req)
    cached = await sync_to_async(_cached)(record, width, height, req)
    if cached is not None:
        return cached
    result = await sync_to_async(_render, thread_sensitive=False)(record, width, height, req)
    if isinstance(result, images.Original):
        return Servable(open_stored(record.file_key), record.size, result.content_type,
                        thumbnails._disposition(result.content_type))
    await sync_to_async(_store)(record, width, height, req, result, configured)
    return Servable(io.BytesIO(result.data), len(result.data), result.content_type,
                    thumbnails._disposition(result.content_type))
