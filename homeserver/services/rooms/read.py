"""Reading rooms as a local user: state, single events, /messages, /context, /relations,
members. Every read passes the history-visibility filter (services/events/visibility.py)."""

from __future__ import annotations

from typing import Any

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.events.client_format import format_client_events
from homeserver.services.events.visibility import filter_visible
from homeserver.services.sync.filters import EventFilter
from homeserver.services.sync.rooms import state_at_position, state_before
from homeserver.storage import events as event_store
from homeserver.storage import state as state_store
from homeserver.storage.directory import events_near_timestamp
from homeserver.storage.stream import current_stream_position

MAX_PAGE = 1000


def _membership(room_id: str, user_id: str) -> tuple[str, str] | None:
    return state_store.membership_of(room_id, user_id)


def check_can_read_state(room_id: str, user_id: str) -> dict[tuple[str, str], str]:
    """State a user may read: current state while joined; the state at their leave otherwise.
    Spec: GET /rooms/{roomId}/state: 403 when the user is not and never was a member."""
    m = _membership(room_id, user_id)
    if m is None or m[0] in ("invite", "knock"):
        raise MatrixError(403, Errcode.FORBIDDEN, f"User {user_id} not in room {room_id}")
    if m[0] == "join":
        return state_store.current_state_ids(room_id)
    rec = event_store.get_event_records([m[1]])[m[1]]
    return dict(state_store.state_for_group(rec.state_group)) if rec.state_group else {}


def room_state(room_id: str, user_id: str) -> list[dict[str, Any]]:
    state = check_can_read_state(room_id, user_id)
    return format_client_events(event_store.get_event_records(state.values()).values())


def state_event_content(room_id: str, user_id: str, etype: str, state_key: str) -> dict:
    state = check_can_read_state(room_id, user_id)
    eid = state.get((etype, state_key))
    if eid is None:
        raise MatrixError(404, Errcode.NOT_FOUND, "Event not found")
    rec = event_store.get_event_records([eid])[eid]
    return format_client_events([rec])[0]["content"]


def get_event_for_user(room_id: str, user_id: str, event_id: str) -> dict[str, Any]:
    rec = event_store.get_event_records([event_id]).get(event_id)
    if rec is None or rec.event.room_id != room_id or rec.stream_ordering is None:
        raise MatrixError(404, Errcode.NOT_FOUND, "Event not found")
    m = _membership(room_id, user_id)
    if not filter_visible(user_id, [rec], current_membership=m[0] if m else None):
        raise MatrixError(404, Errcode.NOT_FOUND, "Event not found")
    return format_client_events([rec])[0]


def parse_token(token: str | None, default: int) -> int:
    if token is None or token == "":
        return default
    if not token.startswith("s") or not token[1:].lstrip("-").isdigit():
        raise MatrixError(400, Errcode.INVALID_PARAM, f"Invalid pagination token {token!r}")
    return int(token[1:])


def messages(
    room_id: str,
    user_id: str,
    *,
    from_token: str | None,
    to_token: str | None,
    direction: str,
    limit: int,
    flt: EventFilter,
) -> dict[str, Any]:
    """Spec: GET /rooms/{roomId}/messages. Tokens are stream positions `s<n>`: a token means
    "between the event at n and the one after it"."""
    m = _membership(room_id, user_id)
    if m is None:
        raise MatrixError(403, Errcode.FORBIDDEN, f"User {user_id} not in room {room_id}")
    if direction not in ("b", "f"):
        raise MatrixError(400, Errcode.INVALID_PARAM, "dir must be 'b' or 'f'")
    limit = max(0, min(limit, MAX_PAGE))
    now = current_stream_position()
    if m[0] != "join":  # A former member reads up to their leave.
        member = event_store.get_event_records([m[1]])[m[1]]
        now = min(now, member.stream_ordering or 0)
    backwards = direction == "b"
    start = parse_token(from_token, now if backwards else 0)
    bound = parse_token(to_token, -1) if to_token else None
    if backwards:
        start = min(start, now)
        recs = event_store.room_timeline(room_id, after=bound, upto=start, limit=limit)
    else:
        upto = min(bound, now) if bound is not None else now
        recs = event_store.room_timeline(
            room_id, after=start, upto=upto, limit=limit, backwards=False
        )
    chunk_recs = recs[::-1] if backwards else recs
    visible = filter_visible(user_id, chunk_recs, current_membership=m[0])
    chunk = [e for e in format_client_events(visible) if flt.matches(e)]
    resp: dict[str, Any] = {"chunk": chunk, "start": f"s{start}"}
    if len(recs) == limit and limit > 0:
        last = chunk_recs[-1].stream_ordering
        resp["end"] = f"s{last - 1}" if backwards else f"s{last}"
    if flt.lazy_load_members and visible:
        senders = {r.event.sender for r in visible}
        st = state_store.current_state_ids(room_id, [("m.room.member", s) for s in senders])
        resp["state"] = format_client_events(event_store.get_event_records(st.values()).values())
    return resp


def context(room_id: str, user_id: str, event_id: str, limit: int, flt: EventFilter) -> dict:
    """Spec: GET /rooms/{roomId}/context/{eventId}."""
    target = event_store.get_event_records([event_id]).get(event_id)
    m = _membership(room_id, user_id)
    if (
        target is None
        or target.event.room_id != room_id
        or target.stream_ordering is None
        or not filter_visible(user_id, [target], current_membership=m[0] if m else None)
    ):
        raise MatrixError(404, Errcode.NOT_FOUND, "Event not found")
    limit = max(0, min(limit, MAX_PAGE))
    so = target.stream_ordering
    before_n, after_n = limit // 2, limit - limit // 2
    before = event_store.room_timeline(room_id, upto=so - 1, limit=before_n)[::-1]
    after = event_store.room_timeline(room_id, after=so, limit=after_n, backwards=False)
    membership = m[0] if m else None
    before = filter_visible(user_id, before, current_membership=membership)
    after = filter_visible(user_id, after, current_membership=membership)
    state = state_before(target)
    return {
        "event": format_client_events([target])[0],
        "events_before": [e for e in format_client_events(before) if flt.matches(e)],
        "events_after": [e for e in format_client_events(after) if flt.matches(e)],
        "start": f"s{(before[-1].stream_ordering if before else so) - 1}",
        "end": f"s{after[-1].stream_ordering if after else so}",
        "state": format_client_events(event_store.get_event_records(state.values()).values()),
    }


def relations(
    room_id: str,
    user_id: str,
    event_id: str,
    rel_type: str | None,
    event_type: str | None,
    *,
    from_token: str | None,
    to_token: str | None,
    direction: str,
    limit: int,
) -> dict[str, Any]:
    """Spec: GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]."""
    get_event_for_user(room_id, user_id, event_id)  # 404 unless visible
    backwards = direction != "f"
    limit = max(1, min(limit, MAX_PAGE))
    frm = parse_token(from_token, -1) if from_token else None
    to = parse_token(to_token, -1) if to_token else None
    recs = event_store.relations(
        event_id,
        rel_type,
        event_type,
        limit=limit,
        backwards=backwards,
        before=frm if backwards else to,
        after=to if backwards else frm,
    )
    m = _membership(room_id, user_id)
    visible = filter_visible(user_id, recs, current_membership=m[0] if m else None)
    resp: dict[str, Any] = {"chunk": format_client_events(visible)}
    if len(recs) == limit:
        last = recs[-1].stream_ordering or 0
        resp["next_batch"] = f"s{last - 1}" if backwards else f"s{last}"
    return resp


def members(
    room_id: str,
    user_id: str,
    *,
    membership: str | None,
    not_membership: str | None,
    at: int | None = None,
) -> list[dict[str, Any]]:
    """Spec: GET /rooms/{roomId}/members: the member list at `at` (a sync/messages token) or
    now, as far as the user may see it."""
    state = check_can_read_state(room_id, user_id)
    if at is not None:
        at_state = state_at_position(room_id, at)
        if at_state:
            state = at_state
    ids = [eid for (t, _), eid in state.items() if t == "m.room.member"]
    events = format_client_events(event_store.get_event_records(ids).values())
    return [
        e
        for e in events
        if (membership is None or e["content"].get("membership") == membership)
        and (not_membership is None or e["content"].get("membership") != not_membership)
    ]


def joined_members(room_id: str, user_id: str) -> dict[str, Any]:
    m = _membership(room_id, user_id)
    if m is None or m[0] != "join":
        raise MatrixError(403, Errcode.FORBIDDEN, f"User {user_id} not in room {room_id}")
    state = state_store.current_state_ids(room_id)
    ids = [eid for (t, _), eid in state.items() if t == "m.room.member"]
    out = {}
    for rec in event_store.get_event_records(ids).values():
        c = rec.event.content
        if c.get("membership") == "join":
            out[rec.event.state_key] = {
                "display_name": c.get("displayname"),
                "avatar_url": c.get("avatar_url"),
            }
    return out


# How many events around a timestamp are tried before answering 404 (each must be visible).
TIMESTAMP_CANDIDATES = 50


def timestamp_to_event(room_id: str, user_id: str, ts: int, direction: str) -> dict[str, Any]:
    """Spec: GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event: the event closest to `ts`
    in direction `dir` that the user may see. Local events only (the federation fallback arrives
    with issue 7). Members, former members and anyone in a world_readable room may ask."""
    if direction not in ("f", "b"):
        raise MatrixError(400, Errcode.INVALID_PARAM, "dir must be 'f' or 'b'")
    m = _membership(room_id, user_id)
    if (m is None or m[0] in ("invite", "knock")) and not is_world_readable(room_id):
        raise MatrixError(403, Errcode.FORBIDDEN, f"User {user_id} not in room {room_id}")
    ids = events_near_timestamp(
        room_id, ts, forwards=direction == "f", limit=TIMESTAMP_CANDIDATES
    )
    recs = event_store.get_event_records(ids)
    ordered = [recs[i] for i in ids if i in recs]
    visible = filter_visible(user_id, ordered, current_membership=m[0] if m else None)
    if not visible:
        way = "forward" if direction == "f" else "backward"
        raise MatrixError(
            404, Errcode.NOT_FOUND, f"Unable to find event from {ts} in {way} direction"
        )
    ev = visible[0].event
    return {"event_id": ev.event_id, "origin_server_ts": ev.origin_server_ts}


def is_world_readable(room_id: str) -> bool:
    key = ("m.room.history_visibility", "")
    eid = state_store.current_state_ids(room_id, [key]).get(key)
    ev = event_store.get_event(eid) if eid else None
    return ev is not None and ev.content.get("history_visibility") == "world_readable"
