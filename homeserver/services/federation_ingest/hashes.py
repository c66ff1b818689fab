"""Step 3: "Passes hash checks, otherwise it is redacted before being processed further".

Spec: server-server API "Validating hashes and signatures on received events": a content hash
that does not match means the content was altered after signing; the redacted form is what the
signatures covered, so that is what we keep.
"""

from __future__ import annotations

from typing import Any

from homeserver.protocol.hashing import check_content_hash
from homeserver.protocol.redaction import redact_pdu
from homeserver.protocol.room_versions import RoomVersion


def check_hashes(pdu: dict[str, Any], rv: RoomVersion) -> dict[str, Any]:
    """The PDU to keep: itself when the content hash matches, else its redaction."""
    if check_content_hash(pdu):
        return pdu
    return redact_pdu(pdu, rv)
