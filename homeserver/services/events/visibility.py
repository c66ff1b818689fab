"""Which events a user may see. Spec: client-server API "History visibility": an event is
visible to a user according to m.room.history_visibility and the user's membership AT the event
(world_readable: anyone; shared: members, also for history before they joined while they are
joined; invited: from the point they were invited; joined: only while joined)."""

from __future__ import annotations

from homeserver.storage import state as state_store
from homeserver.storage.events import EventRecord, get_events

HV_KEY = ("m.room.history_visibility", "")


def _membership_at(state: dict, user_id: str, cache: dict[str, dict]) -> str:
    eid = state.get(("m.room.member", user_id))
    if eid is None:
        return "leave"
    ev = cache.get(eid)
    return (ev or {}).get("membership", "leave")


def filter_visible(
    user_id: str, records: list[EventRecord], *, current_membership: str | None
) -> list[EventRecord]:
    if not records:
        return records
    groups = {r.state_group for r in records if r.state_group is not None}
    states = {g: state_store.state_for_group(g) for g in groups}
    wanted = set()
    for st in states.values():
        for key in (HV_KEY, ("m.room.member", user_id)):
            if key in st:
                wanted.add(st[key])
    contents = {eid: e.content for eid, e in get_events(wanted).items()}
    out = []
    for r in records:
        st = states.get(r.state_group, {}) if r.state_group is not None else {}
        hv_id = st.get(HV_KEY)
        hv = contents.get(hv_id, {}).get("history_visibility", "shared") if hv_id else "shared"
        membership = _membership_at(st, user_id, contents)
        if r.event.type == "m.room.member" and r.event.state_key == user_id:
            out.append(r)  # Users always see their own membership events.
        elif hv == "world_readable" or membership == "join":
            out.append(r)
        elif hv == "shared" and current_membership == "join":
            out.append(r)
        elif hv == "invited" and membership == "invite":
            out.append(r)
    return out
