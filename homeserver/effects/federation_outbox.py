"""The federation outbox: what this server must send to other servers, queued durably.

Call these INSIDE the transaction that writes the thing being sent: the queue rows commit or
roll back with it, and delivery (services/federation/sender.py: Celery tasks, or a thread in the
embedded mode) is kicked on commit. Destinations that are this server, or that the federation
allow/deny lists refuse (REQUIREMENTS.md A_25534), are skipped: nothing is queued for them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from compliance.federation_access import decide
from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.events import Event
from homeserver.storage import federation_outbox as store

logger = logging.getLogger(__name__)


def _allowed(destinations: Iterable[str]) -> set[str]:
    ours = settings.PALISADE.server_name
    out = set()
    for d in destinations:
        if not d or d == ours:
            continue
        rule = decide(d)
        if rule is not None:
            # Not a decision about a request (nothing is audited per event): just not queued.
            logger.debug("not queueing for %s (%s)", d, rule)
            continue
        out.add(d)
    return out


def _enqueue(kind: str, payload: dict[str, Any], destinations: Iterable[str]) -> None:
    from homeserver.services.federation.sender import kick_on_commit, now_ms

    targets = _allowed(destinations)
    if not targets:
        return
    store.queue(kind, encode_canonical_json(payload).decode(), sorted(targets), now_ms())
    kick_on_commit(targets)


def enqueue_pdu(event: Event, destinations: Iterable[str]) -> None:
    """Queue a PDU for each destination server (ordered per destination)."""
    _enqueue(store.PDU, event.pdu, destinations)


def enqueue_edu(edu_type: str, content: dict[str, Any], destinations: Iterable[str]) -> None:
    """Queue an EDU (m.typing, m.receipt, m.presence, m.device_list_update,
    m.signing_key_update, m.direct_to_device) for each destination server."""
    _enqueue(store.EDU, {"edu_type": edu_type, "content": content}, destinations)
