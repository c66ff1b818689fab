"""Steps 1-3 of receiving a PDU (format, signatures, hashes), for every path that takes events
from another server: /send transactions, send_join/invite answers, fetched missing events.
Spec: server-server API "Checks performed on receipt of a PDU"."""

from __future__ import annotations

from typing import Any

from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import RoomVersion
from homeserver.services.federation_ingest.format import PduRejected, check_format
from homeserver.services.federation_ingest.hashes import check_hashes
from homeserver.services.federation_ingest.signatures import check_signatures

__all__ = ["PduRejected", "check_pdu"]


async def check_pdu(pdu: Any, room_version: RoomVersion) -> Event:
    """The event to process further; raises PduRejected when it must be dropped. A PDU whose
    content hash does not match comes back redacted (step 3)."""
    event_id = check_format(pdu, room_version)
    # `unsigned` is not covered by the signatures: another server's claims there are not kept.
    pdu = {k: v for k, v in pdu.items() if k != "unsigned"}
    await check_signatures(pdu, room_version)
    return Event(event_id=event_id, room_version=room_version, pdu=check_hashes(pdu, room_version))
