"""Thumbnails of local media: parse the request, pick the size, reuse the cached thumbnail or
make one (services/media/images.py) and cache it.

Spec: client-server API "Thumbnails" and "GET /_matrix/client/v1/media/thumbnail/{serverName}/
{mediaId}": width and height are required integers ("non-integer dimensions or ... negatively-
sized images" -> 400), method is crop or scale, `animated` a boolean; content that cannot be
thumbnailed -> 400 M_UNKNOWN ("Cannot generate thumbnails for the requested content"); an image
too large to thumbnail -> 413 M_TOO_LARGE.

A request is answered at the smallest configured size ([media] thumbnail_sizes) of its method
that covers it, so the common sizes are made once; larger requests are made at the requested
size, and at most [media] max_thumbnails_per_media of those are kept per media.
Thumbnails are decided by the content's sniffed type, never by the type the uploader claimed.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.media import images
from homeserver.services.media.download import Servable, open_stored
from homeserver.services.media.mxc import thumbnail_key
from homeserver.services.media.upload import now_ms
from homeserver.storage import media as store
from homeserver.storage.media_files import media_backend
from homeserver.storage.media_staging import discard, stage_bytes

THUMBNAILABLE = frozenset({"image/png", "image/apng", "image/jpeg", "image/gif", "image/webp"})
# Decoding is memory-heavy (up to max_image_pixels x 4 bytes): a few at a time per process.
_RENDER_SLOTS = threading.BoundedSemaphore(2)
MAX_DIMENSION = 2**31 - 1


@dataclass(frozen=True)
class ThumbnailRequest:
    width: int
    height: int
    method: str
    animated: bool

    def __post_init__(self) -> None:
        for name, value in (("width", self.width), ("height", self.height)):
            if not 1 <= value <= MAX_DIMENSION:
                raise MatrixError(400, Errcode.INVALID_PARAM,
                                  f"{name} must be a positive integer")
        if self.method not in ("crop", "scale"):
            raise MatrixError(400, Errcode.INVALID_PARAM, "method must be crop or scale")


def target_size(req: ThumbnailRequest) -> tuple[int, int, bool]:
    """(width, height, is a configured size) the request is answered with."""
    covering = [(s.width * s.height, s.width, s.height)
                for s in settings.PALISADE.media.thumbnail_sizes
                if s.method == req.method and s.width >= req.width and s.height >= req.height]
    if covering:
        _, width, height = min(covering)
        return width, height, True
    return req.width, req.height, False


def _disposition(content_type: str) -> str:
    # Spec: thumbnail Content-Disposition "MUST be inline, and SHOULD contain a file name".
    return f'inline; filename="thumbnail.{images.EXTENSIONS[content_type]}"'


def _cached(record: store.MediaRecord, width: int, height: int,
            req: ThumbnailRequest) -> Servable | None:
    thumb = store.get_thumbnail(record.media_id, width, height, req.method, req.animated)
    if thumb is None:
        return None
    try:
        file = media_backend().open(thumb.file_key)
    except FileNotFoundError:
        return None  # removed under us: make it again
    return Servable(file, thumb.size, thumb.content_type, _disposition(thumb.content_type))


def _render(record: store.MediaRecord, width: int, height: int,
            req: ThumbnailRequest) -> images.Thumb | images.Original:
    cfg = settings.PALISADE.media
    with _RENDER_SLOTS, open_stored(record.file_key) as fp:
        try:
            return images.make_thumbnail(
                fp, width, height, req.method, animated=req.animated and cfg.animated_thumbnails,
                max_pixels=cfg.max_image_pixels, max_frames=cfg.max_animated_frames)
        except images.TooLargeToThumbnail as e:
            raise MatrixError(413, Errcode.TOO_LARGE,
                              f"Content is too large to thumbnail ({e})") from None
        except images.CannotThumbnail:
            raise cannot_thumbnail() from None


def _store(record: store.MediaRecord, width: int, height: int, req: ThumbnailRequest,
           thumb: images.Thumb, configured: bool) -> None:
    """Cache a new thumbnail: file first, then its row; a lost race removes our file."""
    cap = settings.PALISADE.media.max_thumbnails_per_media
    if not configured and store.count_thumbnails(record.media_id) >= cap:
        return
    key = thumbnail_key(record.media_id, width, height, req.method, req.animated)
    backend = media_backend()
    staged = stage_bytes(thumb.data)
    try:
        backend.put(key, staged)
        row = store.ThumbnailRecord(width, height, req.method, req.animated,
                                    thumb.content_type, len(thumb.data), key)
        if not store.insert_thumbnail(record.media_id, row, now_ms()):
            backend.delete(key)
    except BaseException:
        backend.delete(key)
        raise
    finally:
        discard(staged)


def cannot_thumbnail() -> MatrixError:
    return MatrixError(400, Errcode.UNKNOWN, "Cannot generate thumbnails for the requested content")


async def thumbnail(record: store.MediaRecord, req: ThumbnailRequest) -> Servable:
    """The thumbnail to serve for an uploaded (not pending) media."""
    if record.sniffed_type not in THUMBNAILABLE:
        raise cannot_thumbnail()
    width, height, configured = target_size(req)
    cached = await sync_to_async(_cached)(record, width, height, req)
    if cached is not None:
        return cached
    # CPU-bound: in the thread pool, not on the thread that runs every request's ORM work.
    result = await sync_to_async(_render, thread_sensitive=False)(record, width, height, req)
    if isinstance(result, images.Original):
        return Servable(open_stored(record.file_key), record.size, result.content_type,
                        _disposition(result.content_type))
    await sync_to_async(_store)(record, width, height, req, result, configured)
    return Servable(io.BytesIO(result.data), len(result.data), result.content_type,
                    _disposition(result.content_type))
