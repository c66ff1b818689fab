"""Wake /sync long-polls when the stream advances, across worker processes.

Writers call `notify_after_commit(...)` inside their transaction; after commit one message goes
to the channel-layer group every worker process listens on (Redis pub/sub in production, the
in-memory layer in the embedded single-process default). Each process then wakes its own
waiting requests whose user is concerned (see services/sync/waiters.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from homeserver.effects import local_waiters

logger = logging.getLogger(__name__)

STREAM_GROUP = "palisade.stream"


def notify_after_commit(
    position: int, *, room_ids: Iterable[str] = (), user_ids: Iterable[str] = ()
) -> None:
    message = {
        "type": "stream.advanced",
        "position": position,
        "rooms": sorted(set(room_ids)),
        "users": sorted(set(user_ids)),
    }
    transaction.on_commit(lambda: _publish(message))


def _publish(message: dict) -> None:
    if not local_waiters.uses_shared_layer():
        local_waiters.wake(message)
        return
    try:
        async_to_sync(get_channel_layer().group_send)(STREAM_GROUP, message)
    except Exception:  # A lost wake-up delays a long-poll until its timeout; never fail a write.
        logger.exception("could not publish stream notification")
