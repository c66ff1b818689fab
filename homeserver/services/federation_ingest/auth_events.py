"""Step 4: "Passes authorization rules based on the event's auth events, otherwise it is
rejected". The check itself lives with persistence (services/federation/persist.py
check_against_auth_events) because it runs in the same transaction that stores the result;
this module fetches the auth events we lack first (spec: GET /event_auth)."""

from __future__ import annotations

from asgiref.sync import sync_to_async

from homeserver.protocol.events import Event
from homeserver.services.federation import client
from homeserver.services.federation.pdu_checks import PduRejected, check_pdu
from homeserver.services.federation.persist import persist_outliers
from homeserver.storage import events as event_store


async def fetch_missing_auth_events(origin: str, event: Event) -> None:
    """Fetch and store (as outliers) the auth chain of `event` when any auth event is unknown."""
    known = await sync_to_async(event_store.known_event_ids)(event.auth_event_ids)
    if known >= set(event.auth_event_ids):
        return
    path = "/_matrix/federation/v1/event_auth/" + client.path_of(event.room_id, event.event_id)
    resp = await client.request("GET", origin, path)
    chain = []
    for pdu in (resp or {}).get("auth_chain") or []:
        try:
            chain.append(await check_pdu(pdu, event.room_version))
        except PduRejected:
            continue
    await sync_to_async(persist_outliers)(chain)
