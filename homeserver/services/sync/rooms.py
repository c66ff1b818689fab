"""The `rooms` section of /sync: joined, invited and left rooms for one user.

Spec: client-server API "GET /_matrix/client/v3/sync". Positions are stream positions (see
storage.stream); a room's `state` holds the state at the START of its timeline (for an
incremental sync: only what changed since the previous sync), the timeline the newest events.
"""

from __future__ import annotations

from typing import Any

from homeserver.services.events.client_format import format_client_events, strip_state_event
from homeserver.services.events.visibility import filter_visible
from homeserver.services.sync.filters import SyncFilter
from homeserver.storage import events as event_store
from homeserver.storage import state as state_store
from homeserver.storage.events import EventRecord
from homeserver.storage.stream import current_stream_position

StateMap = dict[tuple[str, str], str]

# Spec: "Stripped state": what an invitee sees of the room before joining.
INVITE_STATE_TYPES = (
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.encryption",
    "m.room.topic",
)


def state_before(record: EventRecord) -> StateMap:
    st = dict(state_store.state_for_group(record.state_group)) if record.state_group else {}
    ev = record.event
    if ev.is_state and st.get(ev.state_tuple) == ev.event_id:
        if record.replaces_state:
            st[ev.state_tuple] = record.replaces_state
        else:
            del st[ev.state_tuple]
    return st


def state_at_position(room_id: str, position: int) -> StateMap:
    """The room state after the last event at or before `position`."""
    last = event_store.room_timeline(room_id, upto=position, limit=1)
    if not last or last[0].state_group is None:
        return {}
    return dict(state_store.state_for_group(last[0].state_group))


def _state_events(
    user_id: str, state: StateMap, timeline: list[EventRecord], flt: SyncFilter, full: bool
) -> list[dict[str, Any]]:
    ids = list(state.values())
    if flt.state.lazy_load_members and not full:
        # Spec: "Lazy-loading room members": only members who sent timeline events, and the
        # syncing user.
        senders = {r.event.sender for r in timeline} | {user_id}
        ids = [eid for (t, sk), eid in state.items() if t != "m.room.member" or sk in senders]
    records = event_store.get_event_records(ids)
    events = format_client_events(records.values(), include_room_id=False)
    return [e for e in events if flt.state.matches(e)]


def joined_room(
    user_id: str,
    room_id: str,
    flt: SyncFilter,
    *,
    since: int | None,
    now: int,
    full_state: bool,
    txn_ids: dict[str, str],
    state_after: bool = False,
) -> dict[str, Any] | None:
    """One joined room's sync entry, or None when nothing changed since `since`."""
    limit = flt.timeline_limit
    recent = event_store.room_timeline(room_id, after=since, upto=now, limit=limit + 1)
    if since is not None and not recent and not full_state:
        return None
    limited = len(recent) > limit
    recent = recent[-limit:] if limit else []
    recent = filter_visible(user_id, recent, current_membership="join")
    newly_joined = since is not None and any(
        r.event.type == "m.room.member" and r.event.state_key == user_id for r in recent
    )
    if recent:
        start_state = state_before(recent[0])
    else:
        start_state = state_at_position(room_id, now)
    if since is None or full_state or newly_joined:
        state = start_state
    elif limited:
        old = state_at_position(room_id, since)
        state = {k: v for k, v in start_state.items() if old.get(k) != v}
    else:
        state = {}
    timeline = [
        e
        for e in format_client_events(recent, txn_ids=txn_ids, include_room_id=False)
        if flt.timeline.matches(e)
    ]
    prev_batch = (recent[0].stream_ordering - 1) if recent else now
    state_key, state = "state", _state_events(user_id, state, recent, flt, full_state)
    if state_after:
        state_key, state = "state_after", _state_after_events(
            user_id, room_id, since, now, recent, flt, full_state or newly_joined)
    return {
        "timeline": {"events": timeline, "limited": limited, "prev_batch": f"s{prev_batch}"},
        state_key: {"events": state},
        "ephemeral": {"events": []},
        "account_data": {"events": []},
        "unread_notifications": unread_counts(user_id, room_id, now),
        "summary": {},
    }


def _state_after_events(user_id: str, room_id: str, since: int | None, now: int,
                        recent: list[EventRecord], flt: SyncFilter, full: bool) -> list[dict]:
    """Spec v1.16 `state_after`: the state changes between `since` and the END of the
    timeline. The end is the room's current state when the timeline reaches `now` — which,
    after events from a fork were merged, is the resolved state, not the state after the last
    timeline event — so a client that synced during a fork ends with the resolved state."""
    end = (state_store.current_state_ids(room_id) if now >= current_stream_position()
           else state_at_position(room_id, now))
    if since is None or full:
        changed = end
    else:
        old = state_at_position(room_id, since)
        changed = {k: v for k, v in end.items() if old.get(k) != v}
    return _state_events(user_id, changed, recent, flt, full)


def empty_joined_room(now: int) -> dict[str, Any]:
    return {
        "timeline": {"events": [], "limited": False, "prev_batch": f"s{now}"},
        "state": {"events": []},
        "ephemeral": {"events": []},
        "account_data": {"events": []},
        "unread_notifications": {"notification_count": 0, "highlight_count": 0},
        "summary": {},
    }


def unread_counts(user_id: str, room_id: str, now: int) -> dict[str, int]:
    """Spec "Receiving notifications": the events push rules made notify the user, after the
    user's read receipts and own latest event (storage/counts.py). One query."""
    from homeserver.storage.counts import notification_counts

    n, h = notification_counts(user_id, [room_id], now).get(room_id, (0, 0))
    return {"notification_count": n, "highlight_count": h}


def invited_room(room_id: str, invite: EventRecord) -> dict[str, Any]:
    remote = invite.event.pdu.get("unsigned", {}).get("invite_room_state")
    if isinstance(remote, list):
        # An invite over federation to a room we do not hold: the inviting server's stripped
        # state (services/federation/invites.py keeps it with the invite event).
        return {"invite_state": {"events": [*remote, strip_state_event(invite)]}}
    state = state_store.current_state_ids(room_id, [(t, "") for t in INVITE_STATE_TYPES])
    records = event_store.get_event_records(state.values())
    stripped = [strip_state_event(r) for r in records.values()]
    stripped.append(strip_state_event(invite))
    return {"invite_state": {"events": stripped}}


def knocked_room(room_id: str, knock: EventRecord) -> dict[str, Any]:
    """Spec: /sync `rooms.knock`: the stripped state the knocker may see."""
    remote = knock.event.pdu.get("unsigned", {}).get("knock_room_state")
    if isinstance(remote, list):  # a knock over federation (services/federation/remote_membership)
        return {"knock_state": {"events": [*remote, strip_state_event(knock)]}}
    return {"knock_state": invited_room(room_id, knock)["invite_state"]}


def left_room(
    user_id: str, room_id: str, leave: EventRecord, flt: SyncFilter, since: int | None
) -> dict[str, Any]:
    """Spec: a left room shows the timeline up to and including the leave event."""
    limit = flt.timeline_limit
    upto = leave.stream_ordering or 0
    recent = event_store.room_timeline(room_id, after=since, upto=upto, limit=limit + 1)
    limited = len(recent) > limit
    recent = filter_visible(user_id, recent[-limit:] if limit else [], current_membership="leave")
    state = state_before(recent[0]) if recent else {}
    if since is not None and not limited:
        state = {}
    timeline = format_client_events(recent, include_room_id=False)
    prev_batch = (recent[0].stream_ordering - 1) if recent else upto
    return {
        "timeline": {
            "events": [e for e in timeline if flt.timeline.matches(e)],
            "limited": limited,
            "prev_batch": f"s{prev_batch}",
        },
        "state": {"events": _state_events(user_id, state, recent, flt, False)},
        "account_data": {"events": []},
    }
