"""Presence. Spec: client-server API "Presence" (PUT/GET /presence/{userId}/status, "Last
active ago", "Idle timeout") and GET /sync `set_presence` and `presence`.

`[presence] enabled = false` switches it off entirely: PUT and GET answer 403 M_FORBIDDEN
(spec GET: "You are not allowed to see this user's presence status"; clients treat a failed
presence update as non-fatal), /sync ignores set_presence and carries no presence events,
and nothing is stored.

Visible changes (state or status message) take a stream position and wake the /sync long-polls
of everyone sharing a room. Activity alone only moves last_active_ts; idle and offline are
derived from it when presence is read (after `idle_after_seconds` without activity an online
user shows as unavailable, after `offline_after_seconds` as offline). /sync's set_presence
writes at most once a minute per user (a marker in the shared Django cache skips the rest).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts.user_ids import local_user_from_path
from homeserver.services.federation import edus_out
from homeserver.storage import presence as presence_store
from homeserver.storage import state as state_store
from homeserver.storage.presence import PresenceRow
from homeserver.storage.stream import next_stream_positions

STATES = ("online", "unavailable", "offline")
MAX_STATUS_MSG = 1024
# Spec "Last active ago": currently_active while the last activity is this recent.
CURRENTLY_ACTIVE_MS = 60_000
SYNC_BUMP_EVERY_S = 60


def now_ms() -> int:
    return int(time.time() * 1000)


def enabled() -> bool:
    return settings.PALISADE.presence.enabled


def _check_enabled() -> None:
    if not enabled():
        raise MatrixError(403, Errcode.FORBIDDEN, "Presence is disabled on this server")


def effective_state(row: PresenceRow, now: int) -> str:
    cfg = settings.PALISADE.presence
    idle = now - row.last_active_ts
    if row.state == "offline" or idle > cfg.offline_after_seconds * 1000:
        return "offline"
    if row.state == "unavailable" or idle > cfg.idle_after_seconds * 1000:
        return "unavailable"
    return "online"


def presence_content(row: PresenceRow, now: int) -> dict[str, Any]:
    state = effective_state(row, now)
    out: dict[str, Any] = {"presence": state, "last_active_ago": max(0, now - row.last_active_ts)}
    if state == "online":
        out["currently_active"] = out["last_active_ago"] < CURRENTLY_ACTIVE_MS
    if row.status_msg is not None:
        out["status_msg"] = row.status_msg
    return out


def _cache_key(user_id: str) -> str:
    return f"palisade:presence:{user_id}"


def _write(user_id: str, state: str, status_msg: str | None, active: bool) -> None:
    """In a transaction: store a visible change and wake everyone who shares a room."""
    row = presence_store.get_presence(user_id, for_update=True)
    now = now_ms()
    last_active = now if active or row is None else row.last_active_ts
    unchanged = row is not None and (effective_state(row, now), row.status_msg) == (
        state, status_msg)
    if unchanged:
        if active:
            presence_store.touch(user_id, now)
            # Other servers time out presence they do not hear about: remind them.
            edus_out.refresh_presence(user_id, lambda: presence_content(
                PresenceRow(user_id, state, status_msg, now, row.stream_ordering), now))
        return
    position = next_stream_positions(1)
    presence_store.put_presence(user_id, state, status_msg, last_active, position)
    rooms = state_store.rooms_for_user(user_id)
    notify_after_commit(position, room_ids=list(rooms), user_ids=[user_id])
    # Spec: server-server "Presence": to the servers sharing a room with the user.
    edus_out.send_presence(user_id, presence_content(
        PresenceRow(user_id, state, status_msg, last_active, position), now))


def do_set_presence(requester: str, user_id_text: str, body: dict[str, Any]) -> None:
    _check_enabled()
    if str(local_user_from_path(user_id_text)) != requester:
        raise MatrixError(403, Errcode.FORBIDDEN, "Cannot set the presence of another user")
    if "presence" not in body:
        raise MatrixError(400, Errcode.MISSING_PARAM, "Missing parameter: presence")
    state = body["presence"]
    if state not in STATES:
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          "presence must be online, unavailable or offline")
    status_msg = body.get("status_msg")
    if status_msg is not None and (not isinstance(status_msg, str)
                                   or len(status_msg) > MAX_STATUS_MSG):
        raise MatrixError(400, Errcode.BAD_JSON,
                          f"status_msg must be a string of at most {MAX_STATUS_MSG} characters")
    with transaction.atomic():
        _write(requester, state, status_msg, active=state == "online")
    cache.delete(_cache_key(requester))


def get_presence(requester: str, user_id_text: str) -> dict[str, Any]:
    _check_enabled()
    user_id = str(local_user_from_path(user_id_text))
    if user_id != requester and not presence_store.shares_room(requester, user_id):
        raise MatrixError(403, Errcode.FORBIDDEN, "You are not allowed to see their presence")
    row = presence_store.get_presence(user_id)
    if row is None:
        return {"presence": "offline"}
    return presence_content(row, now_ms())


def bump_for_sync(user_id: str, set_presence: str) -> None:
    """Spec GET /sync set_presence: omitted or "online" marks the user online, "unavailable"
    idle, "offline" leaves presence as it is."""
    if not enabled() or set_presence == "offline":
        return
    key = _cache_key(user_id)
    if cache.get(key) == set_presence:
        return
    with transaction.atomic():
        row = presence_store.get_presence(user_id, for_update=True)
        status_msg = row.status_msg if row is not None else None
        _write(user_id, set_presence, status_msg, active=set_presence == "online")
    cache.set(key, set_presence, SYNC_BUMP_EVERY_S)


def presence_events(user_id: str, since: int | None, upto: int) -> list[dict[str, Any]]:
    """m.presence events for /sync: the user and everyone sharing a room, changed since."""
    if not enabled():
        return []
    now = now_ms()
    return [
        {"type": "m.presence", "sender": row.user_id, "content": presence_content(row, now)}
        for row in presence_store.presence_for_sync(user_id, since, upto)
    ]
