"""Event hashes: the content hash (covers the full event) and the reference hash (covers the
redacted event, and is the event id from room version 3 on).

Spec: server-server API, "Signing Events": "Calculating the content hash for an event" and
"Calculating the reference hash for an event"; rooms v1 / v3 / v4 "Event IDs"; rooms v12
"Event format" and appendices "Room IDs" for the create-event-derived room id.

Canonical JSON is always encoded leniently here: strict-number rules for rooms v6+ belong to
validation at the edge (canonical_json.validate_strict_json), done once per event, not on
every hash.
"""

from __future__ import annotations

import hashlib
from typing import Any

from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.redaction import redact_pdu
from homeserver.protocol.room_versions import EventFormat, RoomVersion
from homeserver.protocol.unpadded_base64 import (
    decode_base64,
    encode_base64,
    encode_base64_urlsafe,
)

# Spec: server-server API, Calculating the content hash: remove unsigned, signatures, hashes.
_NOT_IN_CONTENT_HASH = frozenset({"unsigned", "signatures", "hashes"})
# Spec: server-server API, Calculating the reference hash: remove signatures and unsigned after
# redaction. `age_ts` (a legacy top-level field) is removed too; no redaction rule keeps it,
# so this never changes a result, but it keeps the function safe if the rules ever do.
_NOT_IN_REFERENCE_HASH = ("signatures", "unsigned", "age_ts")


def compute_content_hash(pdu: dict[str, Any]) -> bytes:
    """The sha256 content hash of `pdu` (32 raw bytes)."""
    hashed = {key: value for key, value in pdu.items() if key not in _NOT_IN_CONTENT_HASH}
    return hashlib.sha256(encode_canonical_json(hashed)).digest()


def check_content_hash(pdu: dict[str, Any]) -> bool:
    """True if `pdu["hashes"]["sha256"]` matches its content hash.

    False (never an exception) when the hash is missing, malformed or different: the spec
    treats all of these as "we were given a redacted copy" and the caller then stores the
    redacted form. Spec: server-server API, Validating hashes and signatures on received events.
    """
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict):
        return False
    claimed = hashes.get("sha256")
    if not isinstance(claimed, str):
        return False
    try:
        expected = decode_base64(claimed)
    except ValueError:
        return False
    return expected == compute_content_hash(pdu)


def add_content_hash(pdu: dict[str, Any]) -> dict[str, Any]:
    """A copy of `pdu` with `hashes` set to `{"sha256": <unpadded base64 content hash>}`.

    Spec: server-server API, Adding hashes and signatures to outgoing events.
    """
    hashed = dict(pdu)
    hashed["hashes"] = {"sha256": encode_base64(compute_content_hash(pdu))}
    return hashed


def compute_reference_hash(pdu: dict[str, Any], room_version: RoomVersion) -> bytes:
    """The sha256 reference hash of `pdu` (32 raw bytes)."""
    # Spec: server-server API, Calculating the reference hash: 1. redact; 2. remove signatures
    # and unsigned; 3. canonical JSON; 4. sha256. redact_pdu returns a fresh dict, so popping
    # from it needs no further copy.
    redacted = redact_pdu(pdu, room_version)
    for key in _NOT_IN_REFERENCE_HASH:
        redacted.pop(key, None)
    return hashlib.sha256(encode_canonical_json(redacted)).digest()


def compute_event_id(pdu: dict[str, Any], room_version: RoomVersion) -> str:
    """The event id of `pdu` in a room of `room_version`."""
    fmt = room_version.event_format
    if fmt is EventFormat.V1:
        # Spec: rooms v1 Event IDs: the event id is a field of the event (`$opaque:domain`).
        event_id = pdu.get("event_id")
        if not isinstance(event_id, str):
            raise ValueError("event in a v1-format room has no string event_id")
        return event_id
    reference_hash = compute_reference_hash(pdu, room_version)
    if fmt is EventFormat.V2:
        # Spec: rooms v3 Event IDs: '$' + unpadded Base64 of the reference hash.
        return "$" + encode_base64(reference_hash)
    # Spec: rooms v4 Event IDs: '$' + URL-safe unpadded Base64 of the reference hash.
    return "$" + encode_base64_urlsafe(reference_hash)


def room_id_for_create_event(create_pdu: dict[str, Any], room_version: RoomVersion) -> str:
    """The room id a v12+ room takes from its m.room.create event: the create event's id with
    `!` instead of `$`. Spec: rooms v12, Event format; appendices, Room IDs."""
    if not room_version.room_id_from_create_event:
        raise ValueError(
            f"room version {room_version.identifier} does not derive room ids from the create event"
        )
    if create_pdu.get("type") != "m.room.create":
        raise ValueError("only an m.room.create event determines a room id")
    # Spec: rooms v12 auth rule 1.2: the create event must not carry a room_id itself.
    if "room_id" in create_pdu:
        raise ValueError("an m.room.create event in this room version must not have a room_id")
    # Spec: appendices, Room IDs: "simply the event ID of the m.room.create event using `!` as
    # the sigil instead of `$`".
    return "!" + compute_event_id(create_pdu, room_version)[1:]
