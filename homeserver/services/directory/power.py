"""Power-level questions the directory asks about a room's current state.

Spec: client-server API "Permissions" and `m.room.power_levels`; rooms v12 (infinite creators).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.events import Event
from homeserver.protocol.power_levels import (
    PowerLevel,
    required_level_for_event,
    user_power_level,
)
from homeserver.protocol.room_versions import RoomVersion
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage import state as state_store

CREATE_KEY = ("m.room.create", "")
PL_KEY = ("m.room.power_levels", "")


@dataclass(frozen=True)
class RoomPower:
    room_version: RoomVersion
    create: Event | None
    power_levels: Event | None

    @property
    def pl_content(self) -> dict[str, Any]:
        return dict(self.power_levels.content) if self.power_levels is not None else {}

    def level(self, user_id: str) -> PowerLevel:
        return user_power_level(user_id, self.power_levels, self.create, self.room_version)

    def required(self, event_type: str, *, is_state: bool = True) -> int:
        content = self.power_levels.content if self.power_levels is not None else None
        return required_level_for_event(event_type, is_state, content)

    def may_send(self, user_id: str, event_type: str, *, is_state: bool = True) -> bool:
        return self.level(user_id) >= self.required(event_type, is_state=is_state)


def room_power(room_id: str) -> RoomPower | None:
    """The room's current create and power levels events; None for a room we don't know."""
    rv = room_store.room_version(room_id)
    if rv is None:
        return None
    ids = state_store.current_state_ids(room_id, [CREATE_KEY, PL_KEY])
    events = event_store.get_events(ids.values())
    return RoomPower(
        rv,
        events.get(ids.get(CREATE_KEY, "")),
        events.get(ids.get(PL_KEY, "")),
    )


def is_joined(room_id: str, user_id: str) -> bool:
    m = state_store.membership_of(room_id, user_id)
    return m is not None and m[0] == "join"


def check_room_admin(room_id: str, user_id: str, *, is_server_admin: bool, what: str) -> None:
    """"Room admin" here: joined, with the power to send m.room.canonical_alias (the level that
    governs a room's public addresses); server admins always pass. 403 M_FORBIDDEN otherwise."""
    if is_server_admin:
        return
    power = room_power(room_id)
    if (
        power is None
        or not is_joined(room_id, user_id)
        or not power.may_send(user_id, "m.room.canonical_alias")
    ):
        raise MatrixError(403, Errcode.FORBIDDEN, f"You are not allowed to {what} in this room")
