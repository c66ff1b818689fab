"""Rows of the remote media cache: other servers' media fetched over federation, and the
thumbnails made here of it. The bytes are the media backend's (storage/media_files.py)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from django.db import IntegrityError, transaction

from homeserver.models import RemoteMedia, RemoteMediaThumbnail
from homeserver.storage.media import ThumbnailRecord


@dataclass(frozen=True)
class RemoteMediaRecord:
    server_name: str
    media_id: str
    fetched_ts: int
    content_type: str
    sniffed_type: str
    upload_name: str
    size: int
    sha256: str
    file_key: str
    quarantined_by: str = ""
    quarantined_ts: int | None = None


_FIELDS = tuple(f.name for f in fields(RemoteMediaRecord))
_THUMB_FIELDS = tuple(f.name for f in fields(ThumbnailRecord))


def get_cached(server_name: str, media_id: str) -> RemoteMediaRecord | None:
    row = (RemoteMedia.objects.filter(server_name=server_name, media_id=media_id)
           .values(*_FIELDS).first())
    return RemoteMediaRecord(**row) if row else None


def insert_cached(record: RemoteMediaRecord) -> bool:
    """False when the same media was cached meanwhile (another request fetched it too)."""
    try:
        with transaction.atomic():
            RemoteMedia.objects.create(**{name: getattr(record, name) for name in _FIELDS})
    except IntegrityError:
        return False
    return True


def lock_cached(server_name: str, media_id: str) -> RemoteMediaRecord | None:
    """The row, locked until the end of the transaction (SELECT ... FOR UPDATE)."""
    row = (RemoteMedia.objects.select_for_update()
           .filter(server_name=server_name, media_id=media_id).values(*_FIELDS).first())
    return RemoteMediaRecord(**row) if row else None


def set_quarantine(server_name: str, media_id: str, by: str, ts: int | None) -> int:
    return RemoteMedia.objects.filter(server_name=server_name, media_id=media_id).update(
        quarantined_by=by, quarantined_ts=ts)


def delete_cached(server_name: str, media_id: str) -> list[str]:
    """Delete the row and its thumbnails' rows; returns every file key (the files are the
    caller's). Call with the row locked."""
    rows = RemoteMedia.objects.filter(server_name=server_name, media_id=media_id)
    keys = list(rows.values_list("file_key", flat=True))
    keys += list(RemoteMediaThumbnail.objects.filter(media__in=rows)
                 .values_list("file_key", flat=True))
    rows.delete()
    return keys


def _media_pk(server_name: str, media_id: str) -> int | None:
    return (RemoteMedia.objects.filter(server_name=server_name, media_id=media_id)
            .values_list("id", flat=True).first())


def get_thumbnail(server_name: str, media_id: str, width: int, height: int, method: str,
                  animated: bool) -> ThumbnailRecord | None:
    row = (RemoteMediaThumbnail.objects
           .filter(media__server_name=server_name, media__media_id=media_id, width=width,
                   height=height, method=method, animated=animated)
           .values(*_THUMB_FIELDS).first())
    return ThumbnailRecord(**row) if row else None


def count_thumbnails(server_name: str, media_id: str) -> int:
    return RemoteMediaThumbnail.objects.filter(media__server_name=server_name,
                                               media__media_id=media_id).count()


def insert_thumbnail(server_name: str, media_id: str, thumb: ThumbnailRecord,
                     created_ts: int) -> bool:
    """False when the same thumbnail was stored meanwhile (or its media is gone)."""
    try:
        with transaction.atomic():
            pk = _media_pk(server_name, media_id)
            if pk is None:
                return False
            RemoteMediaThumbnail.objects.create(
                media_id=pk, created_ts=created_ts,
                **{name: getattr(thumb, name) for name in _THUMB_FIELDS},
            )
    except IntegrityError:
        return False
    return True
