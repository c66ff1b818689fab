"""Device-list tracking: who must re-fetch whose keys.

Spec: client-server API "Tracking the device list for a user" and "Extensions to /sync"
(device_lists.changed / left), GET /keys/changes.

A change to a user's devices or keys (new device, removed device, uploaded device keys,
cross-signing keys or signatures) takes a stream position and wakes the /sync long-polls of
everyone sharing a room with them. Decision: "sharing a room" counts every room where both are
joined, encrypted or not (the spec says encrypted rooms; on this E2EE-only server they are the
same, and telling a client too much only costs it a /keys/query).
"""

from __future__ import annotations

from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.sync.sync import parse_since
from homeserver.storage import e2ee_device_lists as store
from homeserver.storage import state as state_store
from homeserver.storage.stream import current_stream_position, next_stream_positions


def mark_device_list_change(user_id: str) -> int:
    """Record that `user_id`'s devices or keys changed; inside the writing transaction."""
    position = next_stream_positions(1)
    store.add_device_list_change(user_id, position)
    rooms = state_store.rooms_for_user(user_id)
    notify_after_commit(position, room_ids=rooms.keys(), user_ids=[user_id])
    return position


def device_list_delta(user_id: str, since: int, upto: int) -> tuple[list[str], list[str]]:
    """(changed, left) for a client of `user_id` that has seen everything up to `since`.

    changed: users sharing a room with `user_id` (or `user_id` itself) whose devices or keys
    changed in (since, upto], plus users who started sharing a room with them in that window
    (spec note in "Tracking the device list": a user who comes back after a gap is reported as
    changed, so the client refreshes a list it could not follow). left: users who shared a room
    whose membership changed in the window and who now share none."""
    memberships = state_store.user_memberships(user_id)
    joined = [r for r, (m, _, _) in memberships.items() if m == "join"]
    key_changes = store.users_with_changes(since, upto)
    recent = {r: m for r, (m, _, so) in memberships.items() if since < so <= upto}
    others = [(u, m) for _, u, m in store.member_changes(joined, since, upto) if u != user_id]
    if not key_changes and not recent and not others:
        return [], []  # the common case costs three indexed queries
    sharing = store.joined_members(joined)
    changed = key_changes & (sharing | {user_id})
    changed |= store.joined_members([r for r, m in recent.items() if m == "join"])
    changed |= {u for u, m in others if m == "join"}
    left_candidates = store.joined_members([r for r, m in recent.items() if m in ("leave", "ban")])
    left_candidates |= {u for u, m in others if m in ("leave", "ban")}
    changed.discard(user_id)
    if user_id in key_changes:
        changed.add(user_id)
    left = left_candidates - sharing - {user_id}
    return sorted(changed - left), sorted(left)


def key_changes_between(user_id: str, from_token: str | None,
                        to_token: str | None) -> dict[str, list[str]]:
    """Spec: GET /keys/changes: `from` (required) and `to` are /sync next_batch tokens; `to`
    is capped at the current position."""
    if not from_token:
        raise MatrixError(400, Errcode.MISSING_PARAM, "from is required")
    since = parse_since(from_token) or 0
    now = current_stream_position()
    upto = min(parse_since(to_token) or 0, now) if to_token else now
    changed, left = device_list_delta(user_id, since, upto)
    return {"changed": changed, "left": left}
