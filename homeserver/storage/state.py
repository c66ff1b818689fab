"""Room state: immutable state groups stored as deltas, and the denormalised current state."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from django.db import connection

from homeserver.models import CurrentState, StateGroup, StateGroupEntry
from homeserver.storage import placeholders

StateKey = tuple[str, str]
StateMap = dict[StateKey, str]

# A chain of deltas longer than this is cut with a full snapshot, bounding reads.
DELTA_CHAIN_MAX = 64

# State groups never change once written, so a process-wide cache is always correct. It is
# bounded by groups and by state entries in all (a group of a 5,000-member room holds 5,000),
# least recently used out first; a lock keeps the database threads from evicting a group
# between another thread's lookup and its read.
_CACHE_SIZE = 2048
_CACHE_ENTRIES = 500_000
_group_cache: OrderedDict[int, StateMap] = OrderedDict()
_cache_entries = 0
_cache_lock = threading.Lock()


def _cache_get(group: int) -> StateMap | None:
    with _cache_lock:
        state = _group_cache.get(group)
        if state is not None:
            _group_cache.move_to_end(group)
        return state


def _cache_put(group: int, state: StateMap) -> None:
    global _cache_entries
    with _cache_lock:
        old = _group_cache.pop(group, None)
        if old is not None:
            _cache_entries -= len(old)
        _group_cache[group] = state
        _cache_entries += len(state)
        while len(_group_cache) > 1 and (
            len(_group_cache) > _CACHE_SIZE or _cache_entries > _CACHE_ENTRIES
        ):
            _, evicted = _group_cache.popitem(last=False)
            _cache_entries -= len(evicted)


def create_state_group(room_id: str, prev_group: int | None, delta: Mapping[StateKey, str]) -> int:
    """A new group = prev_group's state with `delta` applied. Returns its id."""
    chain = 0
    full: StateMap | None = None
    if prev_group is not None:
        prev = StateGroup.objects.filter(id=prev_group).values_list("chain_length", flat=True)
        chain = prev.get() + 1
        if chain > DELTA_CHAIN_MAX:
            full = {**state_for_group(prev_group), **delta}
            prev_group, chain = None, 0
    elif delta:
        full = dict(delta)
    group = StateGroup.objects.create(room_id=room_id, prev_group=prev_group, chain_length=chain)
    entries = full if full is not None else delta
    StateGroupEntry.objects.bulk_create(
        [
            StateGroupEntry(state_group=group.id, type=t, state_key=sk, event_id=eid)
            for (t, sk), eid in entries.items()
        ]
    )
    return group.id


def state_for_group(group: int) -> StateMap:
    cached = _cache_get(group)
    if cached is not None:
        return cached
    # Walk to the snapshot (or a cached ancestor), then apply deltas oldest-first.
    chain: list[int] = []
    base: StateMap = {}
    g: int | None = group
    while g is not None:
        ancestor = _cache_get(g)
        if ancestor is not None:
            base = ancestor
            break
        chain.append(g)
        g = StateGroup.objects.filter(id=g).values_list("prev_group", flat=True).get()
    rows = StateGroupEntry.objects.filter(state_group__in=chain).values_list(
        "state_group", "type", "state_key", "event_id"
    )
    by_group: dict[int, list[tuple[str, str, str]]] = {}
    for sg, t, sk, eid in rows:
        by_group.setdefault(sg, []).append((t, sk, eid))
    state = dict(base)
    for sg in reversed(chain):
        for t, sk, eid in by_group.get(sg, ()):
            state[(t, sk)] = eid
    _cache_put(group, state)
    return state


def current_state_ids(room_id: str, keys: Iterable[StateKey] | None = None) -> StateMap:
    """Raw SQL: the send path reads the auth state with it on every event."""
    with connection.cursor() as cur:
        if keys is None:
            cur.execute(
                "SELECT type, state_key, event_id FROM current_state WHERE room_id = %s",
                [room_id],
            )
            return {(t, sk): eid for t, sk, eid in cur.fetchall()}
        wanted = set(keys)
        types = sorted({t for t, _ in wanted})
        if not types:
            return {}
        marks = placeholders(len(types))
        cur.execute(
            "SELECT type, state_key, event_id FROM current_state "  # noqa: S608
            f"WHERE room_id = %s AND type IN ({marks})",
            [room_id, *types],
        )
        return {(t, sk): eid for t, sk, eid in cur.fetchall() if (t, sk) in wanted}


def apply_current_state_delta(
    room_id: str,
    delta: Mapping[StateKey, str],
    stream_ordering: int,
    memberships: Mapping[str, str] | None = None,
) -> None:
    """Upsert the given state keys. `memberships` maps member state_keys to their membership."""
    memberships = memberships or {}
    for (t, sk), eid in delta.items():
        CurrentState.objects.update_or_create(
            room_id=room_id,
            type=t,
            state_key=sk,
            defaults={
                "event_id": eid,
                "membership": memberships.get(sk) if t == "m.room.member" else None,
                "stream_ordering": stream_ordering,
            },
        )


def remove_current_state(room_id: str, keys: Iterable[StateKey]) -> None:
    for t, sk in keys:
        CurrentState.objects.filter(room_id=room_id, type=t, state_key=sk).delete()


def rooms_for_user(user_id: str, memberships: Iterable[str] = ("join",)) -> dict[str, str]:
    """room_id -> membership for the user's rooms in the given memberships."""
    return dict(
        CurrentState.objects.filter(
            type="m.room.member", state_key=user_id, membership__in=list(memberships)
        ).values_list("room_id", "membership")
    )


def membership_of(room_id: str, user_id: str) -> tuple[str, str] | None:
    """(membership, event_id) of the user's current member event in the room, if any. Raw
    SQL: every send checks the sender's membership with it."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT membership, event_id FROM current_state "
            "WHERE room_id = %s AND type = 'm.room.member' AND state_key = %s",
            [room_id, user_id],
        )
        row = cur.fetchone()
    return (row[0], row[1]) if row else None


def room_members(room_id: str, memberships: Iterable[str] = ("join",)) -> list[str]:
    return list(
        CurrentState.objects.filter(
            room_id=room_id, type="m.room.member", membership__in=list(memberships)
        ).values_list("state_key", flat=True)
    )


def user_memberships(user_id: str) -> dict[str, tuple[str, str, int]]:
    """room_id -> (membership, member event id, stream position) for every room the user has a
    member event in."""
    return {
        room_id: (m, eid, so)
        for room_id, m, eid, so in CurrentState.objects.filter(
            type="m.room.member", state_key=user_id
        ).values_list("room_id", "membership", "event_id", "stream_ordering")
    }
