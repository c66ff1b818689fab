"""Build protocol Events for hand-written DAG and auth-rule tests.

Event ids here are chosen by the test (readable names like "$CREATE"), not derived from hashes:
auth rules and state resolution only care about the fields and the graph.
"""

from __future__ import annotations

import itertools
from typing import Any

from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

_ts = itertools.count(1000)


def make_event(
    event_id: str,
    type: str,
    sender: str,
    content: dict[str, Any] | None = None,
    *,
    state_key: str | None = None,
    prev_events: list[str] | None = None,
    auth_events: list[str] | None = None,
    room_id: str | None = "!room:example.org",
    room_version: RoomVersion | str = "10",
    depth: int = 1,
    origin_server_ts: int | None = None,
    **extra: Any,
) -> Event:
    rv = KNOWN_ROOM_VERSIONS[room_version] if isinstance(room_version, str) else room_version
    pdu: dict[str, Any] = {
        "type": type,
        "sender": sender,
        "content": content or {},
        "prev_events": list(prev_events or []),
        "auth_events": list(auth_events or []),
        "depth": depth,
        "origin_server_ts": next(_ts) if origin_server_ts is None else origin_server_ts,
        "hashes": {"sha256": "unused"},
        "signatures": {},
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    if rv.has_event_id_field:
        pdu["event_id"] = event_id
        pdu["prev_events"] = [[e, {}] for e in pdu["prev_events"]]
        pdu["auth_events"] = [[e, {}] for e in pdu["auth_events"]]
    pdu.update(extra)
    return Event(event_id=event_id, room_version=rv, pdu=pdu)
