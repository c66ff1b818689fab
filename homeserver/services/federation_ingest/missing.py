"""Prev events we do not hold: spec server-server API "Retrieving events" / POST
get_missing_events: ask the sender for the events between our forward extremities and the new
event, and process them oldest first, so the new event joins the graph we hold."""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async

from homeserver.protocol.events import Event
from homeserver.services.federation import client
from homeserver.services.federation.pdu_checks import PduRejected, check_pdu
from homeserver.storage import events as event_store

logger = logging.getLogger(__name__)

# Spec: get_missing_events `limit` defaults to 10; we ask for a little more gap at once.
GAP_LIMIT = 20


def _timeline_known(event_ids: list[str]) -> set[str]:
    """Prev events we hold in the graph (outliers do not count: they have no state)."""
    recs = event_store.get_event_records(event_ids)
    return {eid for eid, r in recs.items() if r.state_group is not None}


async def missing_prev_events(event: Event) -> list[str]:
    known = await sync_to_async(_timeline_known)(event.prev_event_ids)
    return [p for p in event.prev_event_ids if p not in known]


async def fetch_missing_events(origin: str, event: Event) -> list[Event]:
    """The events the origin gives us to fill the gap before `event`, checked (steps 1-3),
    oldest first. Failures leave the gap for the state fetch to bridge."""
    extremities = await sync_to_async(event_store.forward_extremities)(event.room_id)
    body = {"earliest_events": extremities, "latest_events": [event.event_id],
            "limit": GAP_LIMIT, "min_depth": max(0, event.depth - GAP_LIMIT * 5)}
    try:
        resp = await client.request("POST", origin, "/_matrix/federation/v1/get_missing_events/"
                                    + client.path_of(event.room_id), content=body)
    except client.FederationError as e:
        logger.info("get_missing_events from %s failed: %s", origin, e)
        return []
    out = []
    for pdu in (resp or {}).get("events") or []:
        try:
            ev = await check_pdu(pdu, event.room_version)
        except PduRejected as e:
            logger.info("dropping a missing event from %s: %s", origin, e)
            continue
        if ev.room_id == event.room_id:
            out.append(ev)
    return sorted(out, key=lambda e: (e.depth, e.origin_server_ts))
