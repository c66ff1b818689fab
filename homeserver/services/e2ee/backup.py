"""Server-side key backups: /room_keys/version and /room_keys/keys.

Spec: client-server API "Server-side key backups" and key_backup.yaml. Keys can only be written
to the current (most recently created, not deleted) version: any other version is 403
M_WRONG_ROOM_KEYS_VERSION with `current_version`. The server only stores the ciphertext the
client encrypted to the backup's public key.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.actions import AuditAction
from audit.log import record
from homeserver.protocol.canonical_json import MAX_SAFE_INTEGER
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts.sessions import now_ms
from homeserver.services.e2ee.key_format import bad_json, invalid
from homeserver.storage import e2ee_backup as store
from homeserver.storage.e2ee_backup import BackedUpKey, BackupVersion

MAX_ID_LENGTH = 255


def _not_found(what: str = "Unknown backup version") -> MatrixError:
    return MatrixError(404, Errcode.NOT_FOUND, what)


def _parse_version(text: str | None) -> int | None:
    """Versions are decimal row ids; anything else names no backup."""
    if text is None:
        raise MatrixError(400, Errcode.MISSING_PARAM, "The version parameter is required")
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


def _existing(user_id: str, version_text: str | None, *, lock: bool = False) -> BackupVersion:
    version = _parse_version(version_text)
    found = store.get_version(user_id, version, lock=lock) if version is not None else None
    if found is None or found.deleted:
        raise _not_found()
    return found


def _render(v: BackupVersion) -> dict[str, Any]:
    return {"algorithm": v.algorithm, "auth_data": v.auth_data,
            "count": store.count_keys(v.version), "etag": str(v.etag), "version": str(v.version)}


def _check_version_body(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    algorithm, auth_data = body.get("algorithm"), body.get("auth_data")
    if not isinstance(algorithm, str) or not 0 < len(algorithm) <= MAX_ID_LENGTH:
        raise bad_json("algorithm must be a non-empty string")
    if not isinstance(auth_data, dict):
        raise bad_json("auth_data must be an object")
    return algorithm, auth_data


def do_create_version(user_id: str, body: dict[str, Any]) -> dict[str, str]:
    """Spec: POST /room_keys/version: the new backup becomes the current one."""
    algorithm, auth_data = _check_version_body(body)
    with transaction.atomic():
        version = store.create_version(user_id, algorithm, auth_data, now_ms())
        record(AuditAction.KEY_BACKUP_CREATED, actor=user_id, target=user_id,
               details={"version": str(version), "algorithm": algorithm})
    return {"version": str(version)}


def get_version(user_id: str, version_text: str | None) -> dict[str, Any]:
    """Spec: GET /room_keys/version[/{version}]; without a version, the current backup."""
    if version_text is None:
        current = store.current_version(user_id)
        if current is None:
            raise _not_found("No current backup version")
        return _render(current)
    return _render(_existing(user_id, version_text))


def do_update_version(user_id: str, version_text: str, body: dict[str, Any]) -> None:
    """Spec: PUT /room_keys/version/{version}: only auth_data may change."""
    algorithm, auth_data = _check_version_body(body)
    if "version" in body and body["version"] != version_text:
        raise invalid("The version in the body does not match the version in the path")
    with transaction.atomic():
        current = _existing(user_id, version_text, lock=True)
        if algorithm != current.algorithm:
            raise invalid("Algorithm does not match")
        store.update_auth_data(current.version, auth_data)
        record(AuditAction.KEY_BACKUP_UPDATED, actor=user_id, target=user_id,
               details={"version": str(current.version)})


def do_delete_version(user_id: str, version_text: str) -> None:
    """Spec: DELETE /room_keys/version/{version}: the backup and all its keys; deleting an
    already deleted backup succeeds, an unknown one is 404."""
    version = _parse_version(version_text)
    with transaction.atomic():
        found = store.get_version(user_id, version, lock=True) if version is not None else None
        if found is None:
            raise _not_found()
        if found.deleted:
            return
        keys = store.count_keys(found.version)
        store.mark_deleted(found.version)
        record(AuditAction.KEY_BACKUP_DELETED, actor=user_id, target=user_id,
               details={"version": str(found.version), "keys_deleted": keys})


def _check_id(value: str, what: str) -> str:
    if not value or len(value) > MAX_ID_LENGTH:
        raise invalid(f"{what} must be 1-{MAX_ID_LENGTH} characters")
    return value


def _check_key(data: Any, room_id: str, session_id: str) -> BackedUpKey:
    """Spec: KeyBackupData: all four fields are required."""
    if not isinstance(data, dict):
        raise bad_json("Key backup data must be an object")
    fmi, fc = data.get("first_message_index"), data.get("forwarded_count")
    for name, value in (("first_message_index", fmi), ("forwarded_count", fc)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad_json(f"{name} must be an integer")
        if not 0 <= value <= MAX_SAFE_INTEGER:
            raise invalid(f"{name} must be a non-negative integer")
    if not isinstance(data.get("is_verified"), bool):
        raise bad_json("is_verified must be a boolean")
    if not isinstance(data.get("session_data"), dict):
        raise bad_json("session_data must be an object")
    return BackedUpKey(_check_id(room_id, "room ID"), _check_id(session_id, "session ID"),
                       fmi, fc, data["is_verified"], data["session_data"])


def parse_upload(body: dict[str, Any], room_id: str | None,
                 session_id: str | None) -> list[BackedUpKey]:
    """The keys of a PUT at any of the three levels (all rooms, one room, one session)."""
    if session_id is not None:
        return [_check_key(body, room_id or "", session_id)]
    rooms = {room_id: body} if room_id is not None else body.get("rooms")
    if not isinstance(rooms, dict):
        raise bad_json("rooms must be an object")
    keys = []
    for rid, room in rooms.items():
        sessions = room.get("sessions") if isinstance(room, dict) else None
        if not isinstance(sessions, dict):
            raise bad_json("Each room must have a sessions object")
        keys += [_check_key(data, rid, sid) for sid, data in sessions.items()]
    return keys


def should_replace(old: BackedUpKey | None, new: BackedUpKey) -> bool:
    """Spec: "Server-side key backups": keep the verified key; then the lower
    first_message_index; then the lower forwarded_count; on a tie keep the stored key."""
    if old is None:
        return True
    if old.is_verified != new.is_verified:
        return new.is_verified
    if old.first_message_index != new.first_message_index:
        return new.first_message_index < old.first_message_index
    return new.forwarded_count < old.forwarded_count


def do_put_keys(user_id: str, version_text: str | None, keys: list[BackedUpKey],
                ) -> dict[str, Any]:
    version = _parse_version(version_text)
    with transaction.atomic():
        current = store.current_version(user_id)
        if current is not None:
            current = store.get_version(user_id, current.version, lock=True)
        if current is None or current.deleted:
            raise _not_found("No current backup version")
        if version != current.version:
            raise MatrixError(403, Errcode.WRONG_ROOM_KEYS_VERSION, "Wrong backup version.",
                              current_version=str(current.version))
        existing = store.existing_keys(current.version, {(k.room_id, k.session_id) for k in keys})
        changed = False
        for key in keys:
            if should_replace(existing.get((key.room_id, key.session_id)), key):
                store.put_key(current.version, key)
                existing[(key.room_id, key.session_id)] = key
                changed = True
        if changed:
            store.bump_etag(current.version)
        etag = current.etag + (1 if changed else 0)
        return {"etag": str(etag), "count": store.count_keys(current.version)}


def _render_key(k: BackedUpKey) -> dict[str, Any]:
    return {"first_message_index": k.first_message_index, "forwarded_count": k.forwarded_count,
            "is_verified": k.is_verified, "session_data": k.session_data}


def get_keys(user_id: str, version_text: str | None, room_id: str | None,
             session_id: str | None) -> dict[str, Any]:
    """Spec: GET /room_keys/keys[/{roomId}[/{sessionId}]]."""
    backup = _existing(user_id, version_text)
    keys = store.get_keys(backup.version, room_id, session_id)
    if session_id is not None:
        if not keys:
            raise _not_found("No key found for this session")
        return _render_key(keys[0])
    rooms: dict[str, Any] = {}
    for k in keys:
        rooms.setdefault(k.room_id, {"sessions": {}})["sessions"][k.session_id] = _render_key(k)
    if room_id is not None:
        return rooms.get(room_id, {"sessions": {}})
    return {"rooms": rooms}


def do_delete_keys(user_id: str, version_text: str | None, room_id: str | None,
                   session_id: str | None) -> dict[str, Any]:
    """Spec: DELETE /room_keys/keys[/{roomId}[/{sessionId}]]."""
    with transaction.atomic():
        backup = _existing(user_id, version_text, lock=True)
        etag = backup.etag
        if store.delete_keys(backup.version, room_id, session_id):
            store.bump_etag(backup.version)
            etag += 1
        return {"etag": str(etag), "count": store.count_keys(backup.version)}
