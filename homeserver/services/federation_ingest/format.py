"""Step 1: "Is a valid event, otherwise it is dropped" (see protocol/pdu_format.py)."""

from __future__ import annotations

from typing import Any

from homeserver.protocol.pdu_format import PduFormatError, check_pdu_format
from homeserver.protocol.room_versions import RoomVersion


class PduRejected(Exception):
    """The PDU is dropped (steps 1 and 2): it never enters the room graph."""


def check_format(pdu: Any, rv: RoomVersion) -> str:
    """The event id of a well-formed PDU; raises PduRejected otherwise."""
    try:
        return check_pdu_format(pdu, rv)
    except PduFormatError as e:
        raise PduRejected(f"invalid event: {e}") from None
