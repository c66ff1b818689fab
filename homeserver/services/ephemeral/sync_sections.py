"""The /sync sections of issue 5: m.typing and m.receipt in each joined room's `ephemeral`,
`presence.events`, the unread counts of rooms shown only for those, and the m.push_rules
account data event on initial sync. Registered in services/sync/providers.py.

Spec: client-server API GET /sync; "Typing Notifications" (m.typing REPLACES the client's list,
so a room whose typing list changed carries the whole current list); "Receipts" (m.receipt
carries deltas; batched into one event per room; m.read.private only to its owner); "Presence"
(users sharing a room); "Push Rules: Events".

Costs per /sync: typing rows and receipts (each joined with the user's memberships) and presence
(if enabled) — one query each — plus one count query for the rooms this adds to the response.
A room joined since `since` (or any room on an initial sync) gets all its current receipts and
typing users.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from homeserver.protocol.push_rules_defaults import client_ruleset
from homeserver.services.ephemeral.typing import expire_due_typing, now_ms
from homeserver.services.presence.presence import presence_events
from homeserver.services.sync.rooms import empty_joined_room
from homeserver.storage import push as push_store
from homeserver.storage import typing as typing_store
from homeserver.storage.counts import notification_counts
from homeserver.storage.receipts import receipts_for_sync


def provide(req: Any, now: int, resp: dict[str, Any]) -> bool:
    """The section provider (see services/sync/providers.py)."""
    since = min(req.since, now) if req.since is not None else None
    per_room: dict[str, list[dict[str, Any]]] = defaultdict(list)
    _typing(req, since, now, per_room)
    _receipts(req, since, now, per_room)
    changed = _add_ephemeral(req, now, resp, per_room)
    flt = req.filter
    presence = [e for e in presence_events(req.user_id, since, now) if flt.presence.matches(e)]
    if presence:
        resp["presence"]["events"] = presence
        changed = True
    if since is None:
        _initial_push_rules(req, resp)
    return changed


def _room_since(req: Any, room_id: str, joined_at: int, since: int | None, now: int
                ) -> tuple[bool, int | None]:
    """(show the room at all, the position to show changes after: None = everything current,
    as for a room joined after `since`)."""
    if joined_at > now or not req.filter.room_allowed(room_id):
        return False, None
    return True, since if since is not None and joined_at <= since else None


def _typing(req: Any, since: int | None, now: int,
            per_room: dict[str, list[dict[str, Any]]]) -> None:
    rows = typing_store.typing_for_sync(req.user_id, since)
    clock = now_ms()
    if any(0 < r.expires_ts <= clock for r, _ in rows):
        # A typing period ran out and the timer that should have ended it did not run (its
        # process restarted): end it now; the change shows in the next response.
        expire_due_typing(clock)
    typing: dict[str, list[str]] = defaultdict(list)
    show: dict[str, bool] = {}
    for r, joined_at in rows:
        visible, room_since = _room_since(req, r.room_id, joined_at, since, now)
        if not visible:
            continue
        if r.expires_ts > clock:
            typing[r.room_id].append(r.user_id)
            show.setdefault(r.room_id, room_since is None)
        if room_since is not None and room_since < r.stream_ordering <= now:
            show[r.room_id] = True
    for room_id, shown in show.items():
        if shown:
            per_room[room_id].append(
                {"type": "m.typing", "content": {"user_ids": sorted(typing.get(room_id, []))}}
            )


def _receipts(req: Any, since: int | None, now: int,
              per_room: dict[str, list[dict[str, Any]]]) -> None:
    content: dict[str, dict[str, Any]] = defaultdict(dict)
    for r, joined_at in receipts_for_sync(req.user_id, since, now):
        visible, _ = _room_since(req, r.room_id, joined_at, since, now)
        if not visible:
            continue
        entry: dict[str, Any] = {"ts": r.ts}
        if r.thread_id:
            entry["thread_id"] = r.thread_id
        by_type = content[r.room_id].setdefault(r.event_id, {})
        by_type.setdefault(r.receipt_type, {})[r.user_id] = entry
    for room_id, c in content.items():
        per_room[room_id].append({"type": "m.receipt", "content": c})


def _add_ephemeral(req: Any, now: int, resp: dict[str, Any],
                   per_room: dict[str, list[dict[str, Any]]]) -> bool:
    joined = resp["rooms"]["join"]
    added = []
    for room_id, events in per_room.items():
        events = [e for e in events if req.filter.ephemeral.matches(e)]
        if not events:
            continue
        if room_id not in joined:
            joined[room_id] = empty_joined_room(now)
            added.append(room_id)
        joined[room_id]["ephemeral"]["events"].extend(events)
    if added:
        for room_id, (n, h) in notification_counts(req.user_id, added, now).items():
            joined[room_id]["unread_notifications"] = {
                "notification_count": n, "highlight_count": h}
    return bool(per_room) and any(joined[r]["ephemeral"]["events"] for r in per_room
                                  if r in joined)


def _initial_push_rules(req: Any, resp: dict[str, Any]) -> None:
    """Clients expect their push rules in the first sync, also before they ever changed one."""
    events = resp["account_data"]["events"]
    if any(e.get("type") == "m.push_rules" for e in events):
        return
    event = {"type": "m.push_rules",
             "content": client_ruleset(req.user_id, push_store.get_ruleset(req.user_id))}
    if req.filter.account_data.matches(event):
        events.append(event)
