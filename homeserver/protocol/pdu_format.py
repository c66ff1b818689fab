"""Step 1 of receiving a PDU: is it a valid event for its room version at all?

Spec: server-server API "Checks performed on receipt of a PDU", step 1 ("Is a valid event,
otherwise it is dropped"), rooms/v*.md "Event format" and "Size limits" (the whole PDU at most
65,536 bytes of canonical JSON; sender, room_id, type, state_key and event ids at most 255
bytes), appendices "Canonical JSON" (v6+: integers within +-(2**53 - 1)).
"""

from __future__ import annotations

from typing import Any

from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.hashing import compute_event_id
from homeserver.protocol.identifiers import InvalidIdentifier, UserID
from homeserver.protocol.room_versions import RoomVersion

MAX_PDU_BYTES = 65536
MAX_ID_BYTES = 255
MAX_SAFE_INT = 2**53 - 1


class PduFormatError(ValueError):
    """The PDU is not a valid event; the spec says to drop it."""


def _string(pdu: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = pdu.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise PduFormatError(f"`{key}` must be a string")
    if len(value.encode()) > MAX_ID_BYTES:
        raise PduFormatError(f"`{key}` is longer than {MAX_ID_BYTES} bytes")
    return value


def _int(pdu: dict[str, Any], key: str) -> int:
    value = pdu.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SAFE_INT:
        raise PduFormatError(f"`{key}` must be a non-negative integer")
    return value


def _edges(pdu: dict[str, Any], key: str, rv: RoomVersion) -> None:
    edges = pdu.get(key)
    if not isinstance(edges, list):
        raise PduFormatError(f"`{key}` must be a list")
    for edge in edges:
        # Spec rooms v1-v2: [event_id, {hashes}] pairs; v3+: event ids.
        eid = edge[0] if rv.has_event_id_field and isinstance(edge, list) and edge else edge
        if not isinstance(eid, str) or not eid.startswith("$") or len(eid.encode()) > MAX_ID_BYTES:
            raise PduFormatError(f"`{key}` holds an invalid event id")


def check_pdu_format(pdu: Any, rv: RoomVersion) -> str:
    """Raise PduFormatError unless `pdu` is a well-formed event of room version `rv`; returns
    its event id (computed from the reference hash for v3+, read from the PDU for v1-v2)."""
    if not isinstance(pdu, dict):
        raise PduFormatError("a PDU must be a JSON object")
    try:
        size = len(encode_canonical_json(pdu))
    except (TypeError, ValueError) as e:
        raise PduFormatError(f"not canonical JSON: {e}") from None
    if size > MAX_PDU_BYTES:
        raise PduFormatError(f"PDU is {size} bytes, over the {MAX_PDU_BYTES} byte limit")
    event_type = _string(pdu, "type")
    sender = _string(pdu, "sender")
    try:
        UserID.parse(sender)
    except (InvalidIdentifier, TypeError):
        raise PduFormatError("`sender` is not a user id") from None
    is_v12_create = rv.room_id_from_create_event and event_type == "m.room.create"
    room_id = _string(pdu, "room_id", required=not is_v12_create)
    if room_id is not None and not room_id.startswith("!"):
        raise PduFormatError("`room_id` is not a room id")
    if "state_key" in pdu:
        _string(pdu, "state_key")
    _int(pdu, "depth")
    _int(pdu, "origin_server_ts")
    if not isinstance(pdu.get("content"), dict):
        raise PduFormatError("`content` must be an object")
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
        raise PduFormatError("`hashes.sha256` is missing")
    if not isinstance(pdu.get("signatures"), dict):
        raise PduFormatError("`signatures` must be an object")
    _edges(pdu, "prev_events", rv)
    _edges(pdu, "auth_events", rv)
    if rv.has_event_id_field:
        event_id = _string(pdu, "event_id")
        assert event_id is not None
        if not event_id.startswith("$"):
            raise PduFormatError("`event_id` is not an event id")
        return event_id
    return compute_event_id(pdu, rv)
