"""Server-side key backups: versions and their backed-up session keys (models.e2ee)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import F

from homeserver.models import RoomKeyBackup, RoomKeyBackupSession
from homeserver.storage.e2ee_keys import dump, load


@dataclass(frozen=True)
class BackupVersion:
    version: int
    user_id: str
    algorithm: str
    auth_data: dict[str, Any]
    etag: int
    deleted: bool


@dataclass(frozen=True)
class BackedUpKey:
    room_id: str
    session_id: str
    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: dict[str, Any]


_VERSION_FIELDS = ("id", "user_id", "algorithm", "auth_data_json", "etag", "deleted")


def _version(row: tuple) -> BackupVersion:
    vid, user_id, algorithm, auth, etag, deleted = row
    return BackupVersion(vid, user_id, algorithm, load(auth), etag, deleted)


def create_version(user_id: str, algorithm: str, auth_data: dict[str, Any], now: int) -> int:
    row = RoomKeyBackup.objects.create(user_id=user_id, algorithm=algorithm,
                                       auth_data_json=dump(auth_data), created_ts=now)
    return row.id


def get_version(user_id: str, version: int, *, lock: bool = False) -> BackupVersion | None:
    """The user's backup `version` (deleted ones too); `lock` holds its row to commit."""
    qs = RoomKeyBackup.objects.filter(user_id=user_id, id=version)
    if lock:
        qs = qs.select_for_update()
    row = qs.values_list(*_VERSION_FIELDS).first()
    return _version(row) if row else None


def current_version(user_id: str) -> BackupVersion | None:
    """The most recently created backup that is not deleted."""
    row = (
        RoomKeyBackup.objects.filter(user_id=user_id, deleted=False)
        .order_by("-id").values_list(*_VERSION_FIELDS).first()
    )
    return _version(row) if row else None


def update_auth_data(version: int, auth_data: dict[str, Any]) -> None:
    RoomKeyBackup.objects.filter(id=version).update(auth_data_json=dump(auth_data))


def mark_deleted(version: int) -> None:
    RoomKeyBackupSession.objects.filter(backup_id=version).delete()
    RoomKeyBackup.objects.filter(id=version).update(deleted=True)


def bump_etag(version: int) -> None:
    RoomKeyBackup.objects.filter(id=version).update(etag=F("etag") + 1)


def count_keys(version: int) -> int:
    return RoomKeyBackupSession.objects.filter(backup_id=version).count()


def _key(row: tuple) -> BackedUpKey:
    room_id, session_id, fmi, fc, verified, data = row
    return BackedUpKey(room_id, session_id, fmi, fc, verified, load(data))


_KEY_FIELDS = ("room_id", "session_id", "first_message_index", "forwarded_count",
               "is_verified", "session_data_json")


def get_keys(version: int, room_id: str | None = None,
             session_id: str | None = None) -> list[BackedUpKey]:
    qs = RoomKeyBackupSession.objects.filter(backup_id=version)
    if room_id is not None:
        qs = qs.filter(room_id=room_id)
    if session_id is not None:
        qs = qs.filter(session_id=session_id)
    return [_key(r) for r in qs.order_by("id").values_list(*_KEY_FIELDS)]


def existing_keys(version: int, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], BackedUpKey]:
    """The stored keys among (room_id, session_id) `pairs`."""
    if not pairs:
        return {}
    rooms = {r for r, _ in pairs}
    sessions = {s for _, s in pairs}
    rows = RoomKeyBackupSession.objects.filter(
        backup_id=version, room_id__in=rooms, session_id__in=sessions
    ).values_list(*_KEY_FIELDS)
    keys = (_key(r) for r in rows)
    return {(k.room_id, k.session_id): k for k in keys if (k.room_id, k.session_id) in pairs}


def put_key(version: int, key: BackedUpKey) -> None:
    RoomKeyBackupSession.objects.update_or_create(
        backup_id=version, room_id=key.room_id, session_id=key.session_id,
        defaults={
            "first_message_index": key.first_message_index,
            "forwarded_count": key.forwarded_count,
            "is_verified": key.is_verified,
            "session_data_json": dump(key.session_data),
        },
    )


def delete_keys(version: int, room_id: str | None = None, session_id: str | None = None) -> int:
    qs = RoomKeyBackupSession.objects.filter(backup_id=version)
    if room_id is not None:
        qs = qs.filter(room_id=room_id)
    if session_id is not None:
        qs = qs.filter(session_id=session_id)
    deleted, _ = qs.delete()
    return deleted
