"""Answering other servers' read requests about rooms we hold: events, state, auth chains,
profile and directory queries. Spec: server-server API "Retrieving events", "Querying for
information". A server sees a room's events only while one of its users is in the room (we
check current membership, and the state at the event for single events)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.events import Event
from homeserver.storage import events as event_store
from homeserver.storage import state as state_store
from homeserver.storage.aliases import resolve_alias


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1]


def _server_in_state(state: dict[tuple[str, str], str], origin: str) -> bool:
    member_ids = [eid for (t, sk), eid in state.items()
                  if t == "m.room.member" and server_of(sk) == origin]
    events = event_store.get_events(member_ids)
    return any(e.content.get("membership") == "join" for e in events.values())


def _visible_to_server(origin: str, records: list) -> list[dict[str, Any]]:
    """The PDUs of `records` as `origin` may see them. Spec: client-server API "History
    visibility" applied to servers (server-server API "Retrieving events"): under `shared` and
    `world_readable` a server in the room sees the history; under `invited`/`joined` only the
    events from the time one of its users was invited/joined. Events it may not see are sent
    redacted, so its copy of the room graph stays whole."""
    from homeserver.protocol.redaction import redact_pdu

    by_group: dict[int | None, bool] = {}  # consecutive events mostly share a state group

    def visible_at(group: int | None) -> bool:
        state = state_store.state_for_group(group) if group else {}
        hv_id = state.get(("m.room.history_visibility", ""))
        hv = event_store.get_event(hv_id).content.get("history_visibility") if hv_id else None
        if hv in (None, "shared", "world_readable"):
            return True
        wanted = ("invite", "join") if hv == "invited" else ("join",)
        member_ids = [eid for (t, sk), eid in state.items()
                      if t == "m.room.member" and server_of(sk) == origin]
        return any(e.content.get("membership") in wanted
                   for e in event_store.get_events(member_ids).values())

    out = []
    for rec in records:
        if rec.state_group not in by_group:
            by_group[rec.state_group] = visible_at(rec.state_group)
        pdu = rec.event.pdu
        out.append(pdu if by_group[rec.state_group] else redact_pdu(pdu, rec.event.room_version))
    return out


def check_server_in_room(room_id: str, origin: str) -> None:
    state = state_store.current_state_ids(room_id)
    if not state or not _server_in_state(state, origin):
        raise MatrixError(403, Errcode.FORBIDDEN, f"{origin} is not in room {room_id}")


def auth_chain(event_ids: list[str]) -> list[Event]:
    seen: dict[str, Event] = {}
    todo = list(event_ids)
    while todo:
        batch = [e for e in todo if e not in seen]
        todo = []
        for eid, ev in event_store.get_events(batch).items():
            seen[eid] = ev
            todo += [a for a in ev.auth_event_ids if a not in seen]
    return list(seen.values())


def get_event(origin: str, event_id: str) -> dict[str, Any]:
    rec = event_store.get_event_records([event_id]).get(event_id)
    if rec is None:
        raise MatrixError(404, Errcode.NOT_FOUND, "Event not found")
    state = state_store.state_for_group(rec.state_group) if rec.state_group else {}
    if not _server_in_state(state, origin):
        check_server_in_room(rec.event.room_id, origin)
    return {"origin": settings.PALISADE.server_name,
            "origin_server_ts": _now(), "pdus": _visible_to_server(origin, [rec])}


def _state_at(room_id: str, event_id: str) -> dict[tuple[str, str], str]:
    """Spec: /state and /state_ids return the state BEFORE event_id."""
    from homeserver.services.sync.rooms import state_before

    rec = event_store.get_event_records([event_id]).get(event_id)
    if rec is None or rec.event.room_id != room_id:
        raise MatrixError(404, Errcode.NOT_FOUND, "Event not found in this room")
    return state_before(rec)


def state_ids(origin: str, room_id: str, event_id: str) -> dict[str, Any]:
    check_server_in_room(room_id, origin)
    state = _state_at(room_id, event_id)
    chain = auth_chain(list(state.values()))
    return {"pdu_ids": list(state.values()), "auth_chain_ids": [e.event_id for e in chain]}


def state(origin: str, room_id: str, event_id: str) -> dict[str, Any]:
    check_server_in_room(room_id, origin)
    st = _state_at(room_id, event_id)
    pdus = event_store.get_events(st.values())
    chain = auth_chain(list(st.values()))
    return {"pdus": [e.pdu for e in pdus.values()], "auth_chain": [e.pdu for e in chain]}


def event_auth(origin: str, room_id: str, event_id: str) -> dict[str, Any]:
    check_server_in_room(room_id, origin)
    ev = event_store.get_event(event_id)
    if ev is None or ev.room_id != room_id:
        raise MatrixError(404, Errcode.NOT_FOUND, "Event not found in this room")
    return {"auth_chain": [e.pdu for e in auth_chain(ev.auth_event_ids)]}


def query_directory(alias: str) -> dict[str, Any]:
    room_id = resolve_alias(alias)
    if room_id is None:
        raise MatrixError(404, Errcode.NOT_FOUND, f"Room alias {alias} not found")
    servers = sorted({server_of(u) for u in state_store.room_members(room_id)}
                     | {settings.PALISADE.server_name})
    return {"room_id": room_id, "servers": servers}


def query_profile(user_id: str, field: str | None) -> dict[str, Any]:
    from homeserver.storage.account_data import get_profile
    from homeserver.storage.accounts import get_account

    if server_of(user_id) != settings.PALISADE.server_name:
        raise MatrixError(403, Errcode.FORBIDDEN, "Not a user of this server")
    account = get_account(user_id)
    profile = get_profile(user_id)
    if account is None or account.deactivated or profile is None:
        raise MatrixError(404, Errcode.NOT_FOUND, "Profile not found")
    out = {k: v for k in ("displayname", "avatar_url") if (v := getattr(profile, k))}
    if field is not None:
        if field not in ("displayname", "avatar_url"):
            raise MatrixError(400, Errcode.INVALID_PARAM, f"Unknown profile field {field}")
        out = {k: v for k, v in out.items() if k == field}
    return out


def _now() -> int:
    import time

    return int(time.time() * 1000)


def get_missing_events(origin: str, room_id: str, body: Any) -> dict[str, Any]:
    """Spec: POST /get_missing_events/{roomId}: walking back from `latest_events` through
    prev_events, the events not reachable from `earliest_events`, at most `limit`, none below
    `min_depth`, oldest first."""
    check_server_in_room(room_id, origin)
    if not isinstance(body, dict):
        raise MatrixError(400, Errcode.BAD_JSON, "Expected a JSON object")
    earliest, latest = body.get("earliest_events", []), body.get("latest_events")
    limit, min_depth = body.get("limit", 10), body.get("min_depth", 0)
    if (not isinstance(latest, list) or not isinstance(earliest, list)
            or not isinstance(limit, int) or not isinstance(min_depth, int)):
        raise MatrixError(400, Errcode.BAD_JSON, "Invalid get_missing_events request")
    limit = max(0, min(limit, 100))
    stop = set(earliest) | set(latest)
    frontier = [e for e in latest if isinstance(e, str)]
    found: dict[str, Event] = {}
    while frontier and len(found) < limit:
        prevs = event_store.prev_events_of(frontier)
        ids = [p for f in frontier for p in prevs.get(f, []) if p not in stop and p not in found]
        events = event_store.get_events(ids)
        frontier = []
        for eid in ids:
            ev = events.get(eid)
            if ev is None or ev.room_id != room_id or ev.depth < min_depth or len(found) >= limit:
                continue
            found[eid] = ev
            frontier.append(eid)
    ordered = sorted(found.values(), key=lambda e: (e.depth, e.origin_server_ts))
    records = event_store.get_event_records([e.event_id for e in ordered])
    return {"events": _visible_to_server(origin, [records[e.event_id] for e in ordered])}


def backfill(origin: str, room_id: str, from_ids: list[str], limit: int) -> dict[str, Any]:
    """Spec: GET /backfill/{roomId}?v=...&limit=...: the events from `v` (inclusive) backwards
    through prev_events, at most `limit`, newest first."""
    check_server_in_room(room_id, origin)
    limit = max(0, min(limit, 100))
    found: dict[str, Event] = {}
    frontier = list(from_ids)
    seen: set[str] = set()
    while frontier and len(found) < limit:
        events = event_store.get_events([f for f in frontier if f not in seen])
        seen.update(frontier)
        nxt: list[str] = []
        for eid in frontier:
            ev = events.get(eid)
            if ev is None or ev.room_id != room_id or eid in found:
                continue
            found[eid] = ev
            nxt.extend(ev.prev_event_ids)
        frontier = [e for e in nxt if e not in seen]
    ordered = sorted(found.values(), key=lambda e: (-e.depth, -e.origin_server_ts))[:limit]
    records = event_store.get_event_records([e.event_id for e in ordered])
    return {"origin": settings.PALISADE.server_name, "origin_server_ts": _now(),
            "pdus": _visible_to_server(origin, [records[e.event_id] for e in ordered])}
