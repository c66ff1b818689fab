"""Rows of the content repository: local media and their cached thumbnails."""

from __future__ import annotations

from dataclasses import dataclass, fields

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum

from homeserver.models import LocalMedia, MediaThumbnail


@dataclass(frozen=True)
class MediaRecord:
    media_id: str
    user_id: str
    created_ts: int
    upload_ts: int | None
    unused_expires_ts: int | None
    content_type: str
    sniffed_type: str
    upload_name: str
    size: int
    sha256: str
    file_key: str
    quarantined_by: str
    quarantined_ts: int | None

    @property
    def pending(self) -> bool:
        """Created by POST /create and still waiting for its content."""
        return self.upload_ts is None

    def expired(self, now: int) -> bool:
        return self.pending and self.unused_expires_ts is not None and self.unused_expires_ts <= now


@dataclass(frozen=True)
class ThumbnailRecord:
    width: int
    height: int
    method: str
    animated: bool
    content_type: str
    size: int
    file_key: str


@dataclass(frozen=True)
class UserUsage:
    user_id: str
    media_count: int
    media_length: int


_MEDIA_FIELDS = tuple(f.name for f in fields(MediaRecord))
_THUMB_FIELDS = tuple(f.name for f in fields(ThumbnailRecord))
_UPLOADED = Q(upload_ts__isnull=False)


def _media(row: dict) -> MediaRecord:
    return MediaRecord(**row)


def insert_media(record: MediaRecord) -> None:
    LocalMedia.objects.create(**{name: getattr(record, name) for name in _MEDIA_FIELDS})


def get_media(media_id: str) -> MediaRecord | None:
    row = LocalMedia.objects.filter(media_id=media_id).values(*_MEDIA_FIELDS).first()
    return _media(row) if row else None


def lock_media(media_id: str) -> MediaRecord | None:
    """The row, locked until the end of the transaction (SELECT ... FOR UPDATE)."""
    row = (LocalMedia.objects.select_for_update().filter(media_id=media_id)
           .values(*_MEDIA_FIELDS).first())
    return _media(row) if row else None


def complete_upload(media_id: str, *, upload_ts: int, content_type: str, sniffed_type: str,
                    upload_name: str, size: int, sha256: str, file_key: str) -> None:
    LocalMedia.objects.filter(media_id=media_id).update(
        upload_ts=upload_ts, unused_expires_ts=None, content_type=content_type,
        sniffed_type=sniffed_type, upload_name=upload_name, size=size, sha256=sha256,
        file_key=file_key,
    )


def count_pending(user_id: str, now: int) -> int:
    return LocalMedia.objects.filter(user_id=user_id, upload_ts__isnull=True,
                                     unused_expires_ts__gt=now).count()


def delete_expired_pending(now: int, user_id: str | None = None) -> int:
    rows = LocalMedia.objects.filter(upload_ts__isnull=True, unused_expires_ts__lte=now)
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
    return rows.delete()[0]


def set_quarantine(media_id: str, by: str, ts: int | None) -> int:
    return LocalMedia.objects.filter(media_id=media_id).update(quarantined_by=by,
                                                               quarantined_ts=ts)


def media_ids_of_user(user_id: str) -> list[str]:
    return list(LocalMedia.objects.filter(user_id=user_id).order_by("media_id")
                .values_list("media_id", flat=True))


def lock_for_delete(media_ids: list[str]) -> tuple[list[str], list[str], int]:
    """Lock the rows: (their ids, every file key of them and their thumbnails, total bytes)."""
    rows = list(LocalMedia.objects.select_for_update().filter(media_id__in=media_ids)
                .order_by("media_id").values_list("media_id", "file_key", "size"))
    ids = [r[0] for r in rows]
    keys = [r[1] for r in rows if r[1]]
    keys += list(MediaThumbnail.objects.filter(media_id__in=ids)
                 .values_list("file_key", flat=True))
    return ids, keys, sum(r[2] for r in rows)


def delete_media(media_ids: list[str]) -> None:
    """Delete the rows and their thumbnails' rows; the files are the caller's."""
    MediaThumbnail.objects.filter(media_id__in=media_ids).delete()
    LocalMedia.objects.filter(media_id__in=media_ids).delete()


def list_user_media(user_id: str, offset: int, limit: int) -> tuple[list[MediaRecord], int]:
    rows = LocalMedia.objects.filter(user_id=user_id).order_by("-created_ts", "media_id")
    return [_media(r) for r in rows.values(*_MEDIA_FIELDS)[offset:offset + limit]], rows.count()


def user_usage(user_id: str) -> UserUsage:
    agg = LocalMedia.objects.filter(_UPLOADED, user_id=user_id).aggregate(
        n=Count("media_id"), total=Sum("size"))
    return UserUsage(user_id, agg["n"] or 0, agg["total"] or 0)


def usage_by_user(offset: int, limit: int, search: str = "") -> tuple[list[UserUsage], int]:
    """Uploaded media per user, the largest users first."""
    rows = LocalMedia.objects.filter(_UPLOADED)
    if search:
        rows = rows.filter(user_id__icontains=search)
    grouped = (rows.values("user_id").annotate(n=Count("media_id"), total=Sum("size"))
               .order_by("-total", "user_id"))
    page = [UserUsage(r["user_id"], r["n"], r["total"] or 0)
            for r in grouped[offset:offset + limit]]
    return page, rows.values("user_id").distinct().count()


def get_thumbnail(media_id: str, width: int, height: int, method: str,
                  animated: bool) -> ThumbnailRecord | None:
    row = (MediaThumbnail.objects.filter(media_id=media_id, width=width, height=height,
                                         method=method, animated=animated)
           .values(*_THUMB_FIELDS).first())
    return ThumbnailRecord(**row) if row else None


def count_thumbnails(media_id: str) -> int:
    return MediaThumbnail.objects.filter(media_id=media_id).count()


def insert_thumbnail(media_id: str, thumb: ThumbnailRecord, created_ts: int) -> bool:
    """False when the same thumbnail was stored meanwhile (or its media is gone)."""
    try:
        with transaction.atomic():
            if not LocalMedia.objects.filter(media_id=media_id).exists():
                return False
            MediaThumbnail.objects.create(
                media_id=media_id, created_ts=created_ts,
                **{name: getattr(thumb, name) for name in _THUMB_FIELDS},
            )
    except IntegrityError:
        return False
    return True
