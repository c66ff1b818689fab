"""Rooms: creation, the per-room lock, room versions (cached: a room's version never changes)."""

from __future__ import annotations

from django.db import connection, transaction

from homeserver.models import Room
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

_versions: dict[str, RoomVersion] = {}


def insert_room(room_id: str, room_version: str, creator: str, created_ts: int) -> None:
    Room.objects.create(
        room_id=room_id, room_version=room_version, creator=creator, created_ts=created_ts
    )
    # Cached only once committed: a rolled-back creation (a failed remote join) leaves none.
    transaction.on_commit(lambda: _versions.setdefault(room_id, KNOWN_ROOM_VERSIONS[room_version]))


def room_version(room_id: str) -> RoomVersion | None:
    rv = _versions.get(room_id)
    if rv is None:
        ident = Room.objects.filter(room_id=room_id).values_list("room_version", flat=True).first()
        if ident is None:
            return None
        rv = _versions[room_id] = KNOWN_ROOM_VERSIONS[ident]
    return rv


def forget_room_version(room_id: str) -> None:
    """After a transaction that created the room rolled back (the cache is process-wide)."""
    _versions.pop(room_id, None)


def lock_room(room_id: str) -> int | None:
    """Take the room's write lock for the rest of the transaction; returns the room's current
    state group. Concurrent local sends into one room queue here, so each builds on the
    previous one's state and the room never forks. On SQLite the database-wide write lock
    (IMMEDIATE transactions) already serialises writers."""
    lock = " FOR UPDATE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cur:
        sql = f"SELECT current_state_group FROM rooms WHERE room_id = %s{lock}"  # noqa: S608
        cur.execute(sql, [room_id])
        row = cur.fetchone()
    if row is None:
        raise LookupError(room_id)
    return row[0]


def set_public(room_id: str, public: bool) -> None:
    Room.objects.filter(room_id=room_id).update(is_public=public)


def set_current_state_group(room_id: str, group: int) -> None:
    Room.objects.filter(room_id=room_id).update(current_state_group=group)
