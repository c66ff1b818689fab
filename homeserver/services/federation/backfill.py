"""Backfill: fetching a room's earlier history from other servers when a local client pages
back past the start of what we hold (typically the history before our first user joined).

Spec: server-server API "Backfilling and retrieving missing events" (GET /backfill/{roomId}
with the ids where our copy of the graph ends, `v`, and a `limit`). Fetched events go through
the same checks as any received PDU (services/federation_ingest/pipeline.ingest_event) and are
stored as history (negative stream positions: in /messages, never in /sync).
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.conf import settings

from homeserver.protocol.errors import MatrixError
from homeserver.services.federation import client
from homeserver.services.federation.pdu_checks import PduRejected, check_pdu
from homeserver.services.federation.persist import MissingEvents
from homeserver.storage.backfill import backward_extremities, reserve_backfill_positions
from homeserver.storage.federation_outbox import servers_in_room
from homeserver.storage.rooms import room_version

logger = logging.getLogger(__name__)

MAX_BACKFILL = 100


def _servers_in_room(room_id: str) -> list[str]:
    me = settings.PALISADE.server_name
    return sorted(s for s in servers_in_room(room_id) if s != me)


async def backfill_room(room_id: str, limit: int) -> int:
    """Fetch up to `limit` earlier events of the room; returns how many were stored."""
    from homeserver.services.federation_ingest.pipeline import ingest_event

    rv = await sync_to_async(room_version)(room_id)
    extremities = await sync_to_async(backward_extremities)(room_id)
    if rv is None or not extremities:
        return 0
    limit = max(1, min(limit, MAX_BACKFILL))
    for server in await sync_to_async(_servers_in_room)(room_id):
        try:
            resp = await client.request("GET", server, "/_matrix/federation/v1/backfill/"
                                        + client.path_of(room_id),
                                        query={"v": extremities, "limit": limit})
        except (client.FederationError, MatrixError) as e:
            logger.info("backfill of %s from %s failed: %s", room_id, server, e)
            continue
        events = []
        for pdu in (resp or {}).get("pdus") or []:
            try:
                ev = await check_pdu(pdu, rv)
            except PduRejected as e:
                logger.info("dropping a backfilled event from %s: %s", server, e)
                continue
            if ev.room_id == room_id:
                events.append(ev)
        stored = 0
        events.sort(key=lambda e: (e.depth, e.origin_server_ts))
        positions = await sync_to_async(reserve_backfill_positions)(len(events))
        for ev, position in zip(events, positions, strict=True):
            try:
                await ingest_event(server, ev, backfill_position=position)
                stored += 1
            except (client.FederationError, MatrixError, MissingEvents, ValueError) as e:
                logger.info("could not store backfilled %s: %s", ev.event_id, e)
        if stored:
            return stored
    return 0
