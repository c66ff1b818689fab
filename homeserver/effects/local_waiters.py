"""The long-polls waiting in THIS process, and the listener that wakes them.

With Redis, every process subscribes to the stream group and wakes its waiters from what it
receives (its own writes included). Without Redis (embedded, one process) writers wake local
waiters directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Waiter:
    user_id: str
    room_ids: frozenset[str]
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)


_waiters: set[Waiter] = set()
_listeners: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}


def wake(message: dict) -> None:
    users = set(message.get("users", ()))
    rooms = set(message.get("rooms", ()))
    for w in list(_waiters):
        if w.user_id in users or not rooms.isdisjoint(w.room_ids) or message.get("all"):
            w.loop.call_soon_threadsafe(w.event.set)


def uses_shared_layer() -> bool:
    return bool(settings.PALISADE.redis.url)


async def _listen() -> None:
    from homeserver.effects.notifier import STREAM_GROUP

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(STREAM_GROUP, channel)
    while True:
        try:
            wake(await layer.receive(channel))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("stream listener error; retrying")
            await asyncio.sleep(1)


def _ensure_listener() -> None:
    if not uses_shared_layer():
        return
    loop = asyncio.get_running_loop()
    task = _listeners.get(loop)
    if task is None or task.done():
        _listeners[loop] = loop.create_task(_listen())




@contextlib.asynccontextmanager
async def registered(user_id: str, room_ids: frozenset[str]):
    """Register before reading the stream, so a write between read and wait is not missed."""
    _ensure_listener()
    w = Waiter(user_id, room_ids, asyncio.get_running_loop())
    _waiters.add(w)
    try:
        yield w
    finally:
        _waiters.discard(w)
