"""A PDU as the protocol functions see it: the full signed JSON plus the room version that
defines how to read it.

Spec: server-server API "PDUs" and rooms/v*.md "Event format". For room versions 3 and later the
event id is not part of the JSON; it is derived from the reference hash (see hashing.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.protocol.room_versions import RoomVersion


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    room_version: RoomVersion
    pdu: dict[str, Any]
    # Set when the event failed authorisation on receipt; rejected events never enter state.
    rejected_reason: str | None = None

    @property
    def type(self) -> str:
        return self.pdu["type"]

    @property
    def state_key(self) -> str | None:
        return self.pdu.get("state_key")

    @property
    def is_state(self) -> bool:
        return "state_key" in self.pdu

    @property
    def sender(self) -> str:
        return self.pdu["sender"]

    @property
    def room_id(self) -> str:
        # Spec rooms v12: the create event has no room_id; the room id is '!' + its event id's hash.
        if "room_id" in self.pdu:
            return self.pdu["room_id"]
        return "!" + self.event_id[1:]

    @property
    def content(self) -> dict[str, Any]:
        return self.pdu.get("content", {})

    @property
    def depth(self) -> int:
        return self.pdu.get("depth", 0)

    @property
    def origin_server_ts(self) -> int:
        return self.pdu.get("origin_server_ts", 0)

    @property
    def prev_event_ids(self) -> list[str]:
        return _edge_ids(self.pdu.get("prev_events", []))

    @property
    def auth_event_ids(self) -> list[str]:
        return _edge_ids(self.pdu.get("auth_events", []))

    @property
    def redacts(self) -> str | None:
        # Spec rooms v11: `redacts` moved into content; older versions keep it top-level.
        if self.room_version.redaction >= 11:
            return self.content.get("redacts") or self.pdu.get("redacts")
        return self.pdu.get("redacts")

    @property
    def state_tuple(self) -> tuple[str, str]:
        assert self.state_key is not None
        return (self.type, self.state_key)


def _edge_ids(edges: list[Any]) -> list[str]:
    # Spec rooms v1-v2: edges are [event_id, {hashes}] pairs; v3+: plain event ids.
    return [e[0] if isinstance(e, list) else e for e in edges]
