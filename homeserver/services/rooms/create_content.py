"""What createRoom puts in a new room: the initial events, from the request and the preset.

Pure planning (no writes): spec client-server API "POST /_matrix/client/v3/createRoom" lists
the order — create, creator's join, power levels, canonical alias, preset events, initial_state,
name, topic, then invites.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.room_versions import RoomVersion

PRESETS = ("private_chat", "public_chat", "trusted_private_chat")

# Spec: createRoom presets table.
PRESET_STATE: dict[str, dict[str, str]] = {
    "private_chat": {
        "join_rule": "invite",
        "history_visibility": "shared",
        "guest_access": "can_join",
    },
    "trusted_private_chat": {
        "join_rule": "invite",
        "history_visibility": "shared",
        "guest_access": "can_join",
    },
    "public_chat": {
        "join_rule": "public",
        "history_visibility": "shared",
        "guest_access": "forbidden",
    },
}


@dataclass(frozen=True)
class PlannedEvent:
    type: str
    state_key: str
    content: dict[str, Any]


def default_power_levels(
    creator: str, preset: str, invitees: list[str], room_version: RoomVersion
) -> dict[str, Any]:
    users: dict[str, int] = {}
    if not room_version.room_id_from_create_event:
        # Spec rooms v12: creators have infinite power and are not listed in `users`.
        users[creator] = 100
    if preset == "trusted_private_chat":
        for invitee in invitees:
            users[invitee] = 100
    return {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0 if preset != "public_chat" else 50,
    }


def plan_initial_state(
    request: dict[str, Any], creator: str, room_version: RoomVersion, alias: str | None
) -> list[PlannedEvent]:
    """The state events after the creator's join, in spec order (create and join excluded)."""
    visibility = request.get("visibility", "private")
    preset = request.get("preset") or ("public_chat" if visibility == "public" else "private_chat")
    if preset not in PRESETS:
        raise MatrixError(400, Errcode.BAD_JSON, f"Unknown preset {preset!r}")
    invitees = request.get("invite") or []
    pl = default_power_levels(creator, preset, invitees, room_version)
    override = request.get("power_level_content_override")
    if override is not None:
        if not isinstance(override, dict):
            raise MatrixError(
                400, Errcode.BAD_JSON, "power_level_content_override must be an object"
            )
        pl.update(override)
    events = [PlannedEvent("m.room.power_levels", "", pl)]
    if alias:
        events.append(PlannedEvent("m.room.canonical_alias", "", {"alias": alias}))
    p = PRESET_STATE[preset]
    events += [
        PlannedEvent("m.room.join_rules", "", {"join_rule": p["join_rule"]}),
        PlannedEvent(
            "m.room.history_visibility", "", {"history_visibility": p["history_visibility"]}
        ),
        PlannedEvent("m.room.guest_access", "", {"guest_access": p["guest_access"]}),
    ]
    # initial_state overrides preset events of the same (type, state_key).
    initial = request.get("initial_state") or []
    if not isinstance(initial, list):
        raise MatrixError(400, Errcode.BAD_JSON, "initial_state must be a list")
    by_key = {(e.type, e.state_key): i for i, e in enumerate(events)}
    for raw in initial:
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("type"), str)
            or not isinstance(raw.get("content"), dict)
        ):
            raise MatrixError(400, Errcode.BAD_JSON, "initial_state entries need type and content")
        ev = PlannedEvent(raw["type"], str(raw.get("state_key", "")), raw["content"])
        if ev.type in ("m.room.create", "m.room.member"):
            raise MatrixError(400, Errcode.BAD_JSON, f"initial_state cannot contain {ev.type}")
        key = (ev.type, ev.state_key)
        if key in by_key and key != ("m.room.power_levels", ""):
            events[by_key[key]] = ev
        else:
            by_key[key] = len(events)
            events.append(ev)
    for key, field in (("name", "m.room.name"), ("topic", "m.room.topic")):
        if key in request:
            if not isinstance(request[key], str):
                raise MatrixError(400, Errcode.BAD_JSON, f"{key} must be a string")
            content = {key: request[key]}
            if key in {"name", "topic"} and (field, "") in by_key:
                events[by_key[(field, "")]] = PlannedEvent(field, "", content)
            else:
                events.append(PlannedEvent(field, "", content))
    return events
