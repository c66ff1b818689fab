"""Build a signed PDU for an event this server originates.

Spec: server-server API "PDUs" (required fields), "Calculating the content hash", "Signing
Events"; rooms v3+ event ids from the reference hash; rooms v12 create events carry no room_id.
"""

from __future__ import annotations

from typing import Any

from homeserver.protocol.events import Event
from homeserver.protocol.hashing import add_content_hash, compute_event_id
from homeserver.protocol.redaction import redact_pdu
from homeserver.protocol.room_versions import RoomVersion
from homeserver.protocol.signing import SigningKey, sign_json

# Spec: server-server API "Size limits": a PDU's canonical JSON must not exceed 65,536 bytes.
MAX_PDU_SIZE = 65536


def build_event(
    *,
    room_version: RoomVersion,
    room_id: str | None,
    sender: str,
    event_type: str,
    content: dict[str, Any],
    state_key: str | None,
    prev_events: list[str],
    auth_events: list[str],
    depth: int,
    origin_server_ts: int,
    server_name: str,
    signing_key: SigningKey,
    redacts: str | None = None,
    v1_event_id: str | None = None,
) -> Event:
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": content,
        "depth": depth,
        "origin_server_ts": origin_server_ts,
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    if redacts is not None:
        # Spec rooms v11: `redacts` lives in content; earlier versions keep it top-level
        # (v11+ clients still read the top-level copy, so servers send both).
        pdu["redacts"] = redacts
        if room_version.redaction >= 11:
            pdu["content"] = {**content, "redacts": redacts}
    if room_version.has_event_id_field:
        # Spec rooms v1/v2: edges are [event_id, {"sha256": hash}] and event_id is a field.
        pdu["event_id"] = v1_event_id
        pdu["origin"] = server_name
        pdu["prev_events"] = [[e, {}] for e in prev_events]
        pdu["auth_events"] = [[e, {}] for e in auth_events]
    else:
        pdu["prev_events"] = list(prev_events)
        pdu["auth_events"] = list(auth_events)
        if room_version.redaction < 11:
            pdu["origin"] = server_name
    pdu = add_content_hash(pdu)
    # Spec: "Signing Events": sign the redacted form, attach the signatures to the full event.
    signed = sign_json(redact_pdu(pdu, room_version), server_name, signing_key)
    pdu["signatures"] = signed["signatures"]
    event_id = compute_event_id(pdu, room_version)
    return Event(event_id=event_id, room_version=room_version, pdu=pdu)
