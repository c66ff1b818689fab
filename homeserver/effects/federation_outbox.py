"""The federation outbox: what this server must send to other servers, queued durably.

Call these INSIDE the transaction that writes the thing being sent: the queue rows commit or
roll back with it, and a Celery task (tasks/federation.py) is kicked on commit to deliver them.
Destinations that are this server, or that the federation allow/deny lists refuse, are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeserver.protocol.events import Event


def enqueue_pdu(event: Event, destinations: Iterable[str]) -> None:
    """Queue a PDU for each destination server (ordered per destination)."""
    raise NotImplementedError  # filled in by the outbound-queue work


def enqueue_edu(edu_type: str, content: dict[str, Any], destinations: Iterable[str]) -> None:
    """Queue an EDU (m.typing, m.receipt, m.presence, m.device_list_update,
    m.signing_key_update, m.direct_to_device) for each destination server."""
    raise NotImplementedError  # filled in by the outbound-queue work
