"""GET /rooms/{roomId}/messages with backfill: when a client pages back past the oldest event
we hold of a federated room, earlier history is fetched from the other servers in the room
first (services/federation/backfill.py), so joining a room never hides its past."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from homeserver.services.federation.backfill import backfill_room
from homeserver.services.rooms import read


async def messages(room_id: str, user_id: str, **kwargs: Any) -> dict[str, Any]:
    resp = await sync_to_async(read.messages)(room_id, user_id, **kwargs)
    reached_start = kwargs.get("direction") == "b" and "end" not in resp
    if reached_start and await backfill_room(room_id, max(kwargs.get("limit") or 10, 20)):
        resp = await sync_to_async(read.messages)(room_id, user_id, **kwargs)
    return resp
