"""Typing notifications. Spec: client-server API "Typing Notifications" and
PUT /rooms/{roomId}/typing/{userId}.

The state lives in the database (typing_states), so every worker process sees it. A change
others can observe (starting or stopping) takes a stream position, so since-tokens cover it,
and wakes the room's /sync long-polls. Extending a running typing period changes nothing
anyone sees and costs one UPDATE, no stream position. When a period runs out, a timer in the
process that handled the request writes the stop (with its own position); should that process
be gone, the next /sync of a room member finds the due row and writes it (see sync_sections).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction

from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.events.send import check_sender_in_room
from homeserver.services.federation import edus_out
from homeserver.storage import typing as typing_store
from homeserver.storage.stream import next_stream_positions

DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 120_000  # clients re-send every 20-30 s (spec "Client behaviour")

logger = logging.getLogger(__name__)


def now_ms() -> int:
    return int(time.time() * 1000)


def check_typing_request(requester: str, room_id: str, user_id: str,
                         body: dict[str, Any]) -> tuple[bool, int]:
    """(typing, timeout_ms) or the error: another user's typing 403, bad body 400,
    not joined 403."""
    if user_id != requester:
        raise MatrixError(403, Errcode.FORBIDDEN, "Cannot set the typing state of another user")
    typing = body.get("typing")
    if not isinstance(typing, bool):
        raise MatrixError(400, Errcode.BAD_JSON, "'typing' must be true or false")
    timeout = body.get("timeout", DEFAULT_TIMEOUT_MS)
    if typing and (not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0):
        raise MatrixError(400, Errcode.BAD_JSON, "'timeout' must be a non-negative integer")
    check_sender_in_room(room_id, requester)
    return typing, min(int(timeout), MAX_TIMEOUT_MS) if typing else 0


def do_set_typing(requester: str, room_id: str, user_id: str, body: dict[str, Any]) -> int:
    """Apply the request; returns when the typing period ends (ms since the epoch), 0 when the
    user is not typing."""
    typing, timeout = check_typing_request(requester, room_id, user_id, body)
    now = now_ms()
    expires = now + timeout if typing else 0
    with transaction.atomic():
        row = typing_store.get_typing(room_id, requester)
        was_typing = row is not None and row.expires_ts > now
        if typing and was_typing:
            typing_store.put_typing(room_id, requester, expires, None)  # extension: unseen
        elif typing or was_typing or (row is not None and row.expires_ts):
            position = next_stream_positions(1)
            typing_store.put_typing(room_id, requester, expires, position)
            notify_after_commit(position, room_ids=[room_id])
            edus_out.send_typing(room_id, requester, typing)
    return expires


async def set_typing(requester: str, room_id: str, user_id: str, body: dict[str, Any]) -> None:
    """do_set_typing, then a timer on this process's event loop to write the stop when the
    period runs out (a later request that extends it leaves an early timer nothing to do)."""
    expires = await sync_to_async(do_set_typing)(requester, room_id, user_id, body)
    if expires:
        loop = asyncio.get_running_loop()
        delay = max(0.0, (expires - now_ms()) / 1000) + 0.05
        loop.call_later(delay, lambda: loop.create_task(_expire_later()))


async def _expire_later() -> None:
    try:
        await sync_to_async(expire_due_typing)()
    except Exception:  # the next /sync of a member writes it instead
        logger.exception("typing expiry failed")


def expire_due_typing(now: int | None = None) -> int:
    """Write the stop of every typing period that has run out, one stream position per room;
    returns how many periods ended."""
    now = now_ms() if now is None else now
    with transaction.atomic():
        due = typing_store.due_typing(now)
        by_room: dict[str, list[str]] = {}
        for room_id, user_id in due:
            by_room.setdefault(room_id, []).append(user_id)
        if not by_room:
            return 0
        last = next_stream_positions(len(by_room))
        for i, (room_id, users) in enumerate(sorted(by_room.items())):
            position = last - len(by_room) + 1 + i
            typing_store.stop_typing(room_id, users, position)
            for user_id in users:  # remote users' periods end here too; only ours are sent
                if edus_out.is_local(user_id):
                    edus_out.send_typing(room_id, user_id, False)
        notify_after_commit(last, room_ids=list(by_room))
    return len(due)
