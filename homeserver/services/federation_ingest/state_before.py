"""Step 5: "Passes authorization rules based on the state before the event, otherwise it is
rejected". The state before an event is the resolution of the states after its prev_events
(services/federation/persist.py state_before_event). When we cannot compute it — prev events we
do not hold and could not fetch — we ask the sending server for the state at the event
(spec: GET /state_ids, then /state for the events we lack) and check what it returns."""

from __future__ import annotations

from asgiref.sync import sync_to_async

from homeserver.protocol.events import Event
from homeserver.services.federation import client
from homeserver.services.federation.pdu_checks import PduRejected, check_pdu
from homeserver.services.federation.persist import persist_outliers
from homeserver.storage import events as event_store

StateMap = dict[tuple[str, str], str]


async def fetch_state_before(origin: str, event: Event) -> StateMap:
    """The state before `event` as its origin reports it, every event of it stored (checked)."""
    room = event.room_id
    query = {"event_id": event.event_id}
    ids = await client.request("GET", origin, "/_matrix/federation/v1/state_ids/"
                               + client.path_of(room), query=query)
    pdu_ids = [i for i in (ids or {}).get("pdu_ids") or [] if isinstance(i, str)]
    chain_ids = [i for i in (ids or {}).get("auth_chain_ids") or [] if isinstance(i, str)]
    known = await sync_to_async(event_store.known_event_ids)(pdu_ids + chain_ids)
    if not known >= set(pdu_ids + chain_ids):
        full = await client.request("GET", origin, "/_matrix/federation/v1/state/"
                                    + client.path_of(room), query=query)
        fetched = []
        for pdu in (full or {}).get("auth_chain", []) + (full or {}).get("pdus", []):
            try:
                fetched.append(await check_pdu(pdu, event.room_version))
            except PduRejected:
                continue
        await sync_to_async(persist_outliers)(fetched)
    events = await sync_to_async(event_store.get_events)(pdu_ids)
    state: StateMap = {}
    for eid in pdu_ids:
        ev = events.get(eid)
        if ev is not None and ev.is_state and ev.room_id == room and ev.rejected_reason is None:
            state[ev.state_tuple] = eid
    return state
