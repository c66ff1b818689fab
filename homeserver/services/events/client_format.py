"""Events as clients see them. Spec: client-server API "Room Event Format" (ClientEvent):
federation-only keys dropped, unsigned.age/prev_content/redacted_because/transaction_id added,
redacted events pruned with the room version's redaction algorithm."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from homeserver.protocol.redaction import redact_pdu
from homeserver.storage import events as event_store
from homeserver.storage.events import EventRecord

_CLIENT_KEYS = (
    "content",
    "event_id",
    "origin_server_ts",
    "room_id",
    "sender",
    "state_key",
    "type",
    "redacts",
)


def format_client_events(
    records: Iterable[EventRecord],
    *,
    txn_ids: dict[str, str] | None = None,
    include_room_id: bool = True,
) -> list[dict[str, Any]]:
    """Serialise records; fetches prev_content and redaction events in one query each."""
    records = list(records)
    related = event_store.get_events(
        [r.replaces_state for r in records if r.replaces_state]
        + [r.redacted_by for r in records if r.redacted_by]
    )
    now = int(time.time() * 1000)
    out = []
    for r in records:
        ev = r.event
        pdu = redact_pdu(ev.pdu, ev.room_version) if r.redacted_by else ev.pdu
        d: dict[str, Any] = {k: pdu[k] for k in _CLIENT_KEYS if k in pdu}
        d["event_id"] = ev.event_id
        d["room_id"] = ev.room_id
        if not include_room_id:
            del d["room_id"]
        unsigned: dict[str, Any] = {"age": max(0, now - ev.origin_server_ts)}
        if r.replaces_state and r.replaces_state in related:
            prev = related[r.replaces_state]
            unsigned["prev_content"] = prev.content
            unsigned["replaces_state"] = r.replaces_state
            unsigned["prev_sender"] = prev.sender
        if r.redacted_by and r.redacted_by in related:
            red = related[r.redacted_by]
            unsigned["redacted_because"] = {
                "type": red.type,
                "sender": red.sender,
                "event_id": red.event_id,
                "content": red.content,
                "origin_server_ts": red.origin_server_ts,
                "redacts": red.redacts,
            }
        if txn_ids and ev.event_id in txn_ids:
            unsigned["transaction_id"] = txn_ids[ev.event_id]
        d["unsigned"] = unsigned
        out.append(d)
    return out


def strip_state_event(record: EventRecord) -> dict[str, Any]:
    """Spec: "Stripped state" for invite_state / knock_state."""
    ev = record.event
    return {"type": ev.type, "state_key": ev.state_key, "content": ev.content, "sender": ev.sender}
