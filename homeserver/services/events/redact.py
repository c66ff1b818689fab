"""Redacting an event as a local user. Spec: client-server API "Redactions": the sender may
redact their own events; others need the room's `redact` power level (checked here for every
room version, since from v3 the auth rules leave it to the server)."""

from __future__ import annotations

from typing import Any

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.power_levels import named_level, user_power_level
from homeserver.services.events.send import do_client_send
from homeserver.storage import events as event_store
from homeserver.storage import state as state_store


def check_can_redact(room_id: str, sender: str, event_id: str) -> None:
    target = event_store.get_event(event_id)
    if target is None or target.room_id != room_id:
        raise MatrixError(404, Errcode.NOT_FOUND, "Event not found")
    if target.sender == sender:
        return
    keys = [("m.room.power_levels", ""), ("m.room.create", "")]
    state = state_store.current_state_ids(room_id, keys)
    evs = event_store.get_events(state.values())
    pl = evs.get(state.get(("m.room.power_levels", ""), ""))
    create = evs.get(state.get(("m.room.create", ""), ""))
    level = user_power_level(sender, pl, create, target.room_version)
    if level < named_level(pl.content if pl else None, "redact"):
        raise MatrixError(403, Errcode.FORBIDDEN, "You don't have permission to redact this event")


def do_redact(
    *,
    room_id: str,
    sender: str,
    event_id: str,
    reason: Any,
    device_id: str | None,
    txn_id: str | None,
) -> str:
    content: dict[str, Any] = {}
    if reason is not None:
        if not isinstance(reason, str):
            raise MatrixError(400, Errcode.BAD_JSON, "reason must be a string")
        content["reason"] = reason
    check_can_redact(room_id, sender, event_id)
    return do_client_send(
        room_id=room_id,
        sender=sender,
        event_type="m.room.redaction",
        content=content,
        redacts=event_id,
        device_id=device_id,
        txn_id=txn_id,
    )
