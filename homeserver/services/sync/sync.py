"""/sync: assemble the response for one device, and long-poll until something changes.

Spec: client-server API "GET /_matrix/client/v3/sync". Tokens are `s<stream position>`; the
position only grows and is stored in the database, so a token stays valid across restarts.
Sections later issues fill (ephemeral, presence, device lists, to-device, one-time key counts)
come from the providers listed in services/sync/providers.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from homeserver.effects import local_waiters
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.sync import rooms as room_sync
from homeserver.services.sync.filters import SyncFilter
from homeserver.services.sync.providers import SectionProvider, load_providers
from homeserver.storage import events as event_store
from homeserver.storage import state as state_store
from homeserver.storage.account_data import account_data_changes
from homeserver.storage.stream import current_stream_position, release_connection
from homeserver.storage.txns import txn_ids_for

MAX_TIMEOUT_MS = 5 * 60 * 1000
EMBEDDED_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class SyncRequest:
    user_id: str
    device_id: str
    since: int | None
    filter: SyncFilter
    full_state: bool
    # Spec v1.16 /sync `use_state_after`: send `state_after` (state up to the END of the
    # timeline, including what state resolution decided) instead of `state`.
    use_state_after: bool = False


_providers: list[SectionProvider] | None = None


def section_providers() -> list[SectionProvider]:
    global _providers
    if _providers is None:
        _providers = load_providers()
    return _providers


def parse_since(token: str | None) -> int | None:
    if not token:
        return None
    if not token.startswith("s") or not token[1:].isdigit():
        raise MatrixError(400, Errcode.INVALID_PARAM, f"Invalid since token {token!r}")
    return int(token[1:])


def empty_response(now: int) -> dict[str, Any]:
    return {
        "next_batch": f"s{now}",
        "rooms": {"join": {}, "invite": {}, "leave": {}, "knock": {}},
        "account_data": {"events": []},
        "presence": {"events": []},
        "to_device": {"events": []},
        "device_lists": {"changed": [], "left": []},
        "device_one_time_keys_count": {},
        "device_unused_fallback_key_types": [],
    }


def build_sync(req: SyncRequest) -> tuple[dict[str, Any], bool]:
    """The response for `req` and whether it carries anything new since `req.since`."""
    now = current_stream_position()
    since = min(req.since, now) if req.since is not None else None
    resp = empty_response(now)
    rooms = resp["rooms"]
    flt = req.filter
    memberships = state_store.user_memberships(req.user_id)
    active = None
    if since is not None and not req.full_state:
        # One query finds the joined rooms with anything new; idle rooms cost nothing.
        joined_ids = [r for r, (m, _, _) in memberships.items() if m == "join"]
        active = event_store.rooms_with_events(joined_ids, since, now)
    for room_id, (membership, event_id, so) in memberships.items():
        if not flt.room_allowed(room_id) or so > now:
            continue
        if membership == "join":
            if active is not None and room_id not in active:
                continue
            # A room joined since the last sync is sent as in an initial sync: full state and
            # the latest events (spec: "newly joined room" behaviour clients expect).
            room_since = since if since is None or so <= since else None
            entry = room_sync.joined_room(
                req.user_id, room_id, flt, since=room_since, now=now,
                full_state=req.full_state, txn_ids={}, state_after=req.use_state_after,
            )
            if entry is not None:
                rooms["join"][room_id] = entry
        elif membership == "invite" and (since is None or so > since):
            member = event_store.get_event_records([event_id])[event_id]
            rooms["invite"][room_id] = room_sync.invited_room(room_id, member)
        elif membership == "knock" and (since is None or so > since):
            member = event_store.get_event_records([event_id])[event_id]
            rooms["knock"][room_id] = room_sync.knocked_room(room_id, member)
        elif membership in ("leave", "ban") and (
            (since is not None and so > since) or (since is None and flt.include_leave)
        ):
            member = event_store.get_event_records([event_id])[event_id]
            rooms["leave"][room_id] = room_sync.left_room(req.user_id, room_id, member, flt, since)
    _echo_transaction_ids(req, rooms["join"])
    _add_account_data(req, since, now, resp)
    changed = any(rooms[k] for k in rooms) or bool(resp["account_data"]["events"])
    for provider in section_providers():
        changed = provider(req, now, resp) or changed
    return resp, changed


def _add_account_data(req: SyncRequest, since: int | None, now: int, resp: dict) -> None:
    """Spec: "Client Config": global account data at the top level, per-room account data in
    each joined room (a room whose only change is its account data still appears)."""
    global_data, per_room = account_data_changes(req.user_id, since, now)
    flt = req.filter
    resp["account_data"]["events"] = [
        e for e in ({"type": t, "content": c} for t, c in global_data.items())
        if flt.account_data.matches(e)
    ]
    joined = resp["rooms"]["join"]
    memberships = None
    for room_id, data in per_room.items():
        if room_id not in joined:
            if memberships is None:
                memberships = state_store.rooms_for_user(req.user_id)
            if room_id not in memberships or not flt.room_allowed(room_id):
                continue
            joined[room_id] = room_sync.empty_joined_room(now)
        joined[room_id]["account_data"]["events"] = [
            e for e in ({"type": t, "content": c} for t, c in data.items())
            if flt.room_account_data.matches(e)
        ]


def _echo_transaction_ids(req: SyncRequest, joined: dict[str, Any]) -> None:
    """Spec: unsigned.transaction_id goes only to the device that sent the event."""
    own = [
        e for r in joined.values() for e in r["timeline"]["events"] if e["sender"] == req.user_id
    ]
    txns = txn_ids_for(req.user_id, req.device_id, [e["event_id"] for e in own])
    for e in own:
        if e["event_id"] in txns:
            e["unsigned"]["transaction_id"] = txns[e["event_id"]]


async def sync(req: SyncRequest, timeout_ms: int) -> dict[str, Any]:
    build = sync_to_async(build_sync)
    timeout_ms = max(0, min(timeout_ms, MAX_TIMEOUT_MS))
    if req.since is None or req.full_state or timeout_ms == 0:
        return (await build(req))[0]
    deadline = time.monotonic() + timeout_ms / 1000
    joined = await sync_to_async(state_store.rooms_for_user)(req.user_id)
    # Without Redis nothing carries a write in ANOTHER process (a second worker, or the
    # federation listener's processes) to our waiters: also look at the stream position now
    # and then. One small query per waiting client per interval, embedded deployments only.
    poll = None if local_waiters.uses_shared_layer() else EMBEDDED_POLL_SECONDS
    while True:
        # Register before reading, so a write landing between the read and the wait wakes us.
        async with local_waiters.registered(req.user_id, frozenset(joined)) as waiter:
            resp, changed = await build(req)
            if changed or deadline <= time.monotonic():
                return resp
            seen = int(resp["next_batch"][1:])
            await sync_to_async(release_connection)()  # parked: hold no pooled connection
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return (await build(req))[0]
                try:
                    await asyncio.wait_for(waiter.event.wait(),
                                           min(remaining, poll) if poll else remaining)
                    break  # woken: build again
                except TimeoutError:
                    if poll and await sync_to_async(current_stream_position)() > seen:
                        break
                    if poll:  # the poll took a (pooled) connection: give it back while parked
                        await sync_to_async(release_connection)()
