"""Step 2: "Passes signature checks, otherwise it is dropped".

Spec: server-server API "Validating hashes and signatures on received events": the event must
be signed by the sender's server; in room versions 1-2 also by the server named in the event
id; for restricted joins (v8+) also by the server of `join_authorised_via_users_server`. The
signatures cover the redacted event. Keys come from the keyring (fetched when unknown); in room
versions 5+ the key must have been valid when the event was sent (enforce_key_validity).
"""

from __future__ import annotations

from typing import Any

from homeserver.protocol.errors import MatrixError
from homeserver.protocol.room_versions import RoomVersion
from homeserver.protocol.signing import SignatureError, verify_event_signature
from homeserver.services.federation import keyring
from homeserver.services.federation_ingest.format import PduRejected


def _server(identifier: str) -> str:
    return identifier.split(":", 1)[1]


def required_servers(pdu: dict[str, Any], rv: RoomVersion) -> set[str]:
    servers = {_server(pdu["sender"])}
    if rv.has_event_id_field:
        servers.add(_server(pdu["event_id"]))
    content = pdu.get("content") or {}
    via = content.get("join_authorised_via_users_server")
    if (rv.restricted_join_rule and pdu.get("type") == "m.room.member"
            and content.get("membership") == "join" and isinstance(via, str) and ":" in via):
        servers.add(_server(via))
    return servers


async def check_signatures(pdu: dict[str, Any], rv: RoomVersion) -> None:
    signatures = pdu.get("signatures") or {}
    valid_at = pdu.get("origin_server_ts") if rv.enforce_key_validity else None
    for server in sorted(required_servers(pdu, rv)):
        by_key = signatures.get(server)
        if not isinstance(by_key, dict) or not by_key:
            raise PduRejected(f"not signed by {server}")
        # One valid ed25519 signature by the server is enough; try each key it names.
        errors: list[str] = []
        for key_id in sorted(k for k in by_key if k.startswith("ed25519:")):
            try:
                raw = await keyring.get_verify_key(server, key_id, valid_at_ms=valid_at)
                verify_event_signature(pdu, rv, server, key_id, raw)
                break
            except (keyring.KeyNotFound, SignatureError, MatrixError) as e:
                errors.append(str(e))
        else:
            raise PduRejected(f"no valid signature from {server}: {'; '.join(errors) or 'none'}")
