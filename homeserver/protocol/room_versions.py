"""The room version table: every behavioural difference between room versions is a flag here.

Code branches on flags, never on version strings, so supporting a version is a row of data.
Spec: rooms/_index.md and rooms/v1.md ... rooms/v12.md.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EventFormat(enum.IntEnum):
    V1 = 1  # rooms v1-v2: event_id is a field of the event (`$opaque:server`).
    V2 = 2  # rooms v3: event_id = '$' + standard unpadded base64 of the reference hash.
    V3 = 3  # rooms v4+: event_id = '$' + URL-safe unpadded base64 of the reference hash.


class StateRes(enum.IntEnum):
    V1 = 1
    V2 = 2
    # Rooms v12: state res v2 with the changes of MSC4297 (empty start, conflicted subgraph).
    V2_1 = 21


class RedactionRules(enum.IntEnum):
    V1 = 1  # rooms v1-v5
    V6 = 6  # rooms v6-v8: m.room.aliases no longer special
    V9 = 9  # rooms v9-v10: join_authorised_via_users_server kept on m.room.member
    V11 = 11  # rooms v11+: see rooms/v11.md "Redactions"


@dataclass(frozen=True, slots=True)
class RoomVersion:
    identifier: str
    stable: bool
    event_format: EventFormat
    state_res: StateRes
    redaction: RedactionRules
    # Spec v5: verify_keys must be valid (valid_until_ts) at the event's origin_server_ts.
    enforce_key_validity: bool
    # Spec v1-v5: m.room.aliases has its own auth rule; v6 removed it.
    special_case_aliases_auth: bool
    # Spec v6: integers must be in [-(2**53)+1, (2**53)-1]; no floats in canonical JSON.
    strict_canonicaljson: bool
    # Spec v6: the `notifications` key of m.room.power_levels is checked in the auth rules.
    limit_notifications_power_levels: bool
    # Spec v7: the `knock` join rule and membership.
    knock_join_rule: bool
    # Spec v8: the `restricted` join rule and join_authorised_via_users_server.
    restricted_join_rule: bool
    # Spec v10: the `knock_restricted` join rule.
    knock_restricted_join_rule: bool
    # Spec v10: power level values must be integers (no strings).
    enforce_int_power_levels: bool
    # Spec v11: the creator is the sender of m.room.create (no `creator` content key).
    implicit_room_creator: bool
    # Spec v12: the room id is derived from the create event's reference hash, the create
    # event carries no room_id and is not listed in auth_events, creators (sender +
    # additional_creators) have infinite power level.
    room_id_from_create_event: bool

    @property
    def has_event_id_field(self) -> bool:
        return self.event_format is EventFormat.V1


def _v(identifier: str, *, stable: bool = True, **flags: object) -> RoomVersion:
    return RoomVersion(identifier=identifier, stable=stable, **flags)  # type: ignore[arg-type]


_V1 = dict(
    event_format=EventFormat.V1,
    state_res=StateRes.V1,
    redaction=RedactionRules.V1,
    enforce_key_validity=False,
    special_case_aliases_auth=True,
    strict_canonicaljson=False,
    limit_notifications_power_levels=False,
    knock_join_rule=False,
    restricted_join_rule=False,
    knock_restricted_join_rule=False,
    enforce_int_power_levels=False,
    implicit_room_creator=False,
    room_id_from_create_event=False,
)
_V2 = {**_V1, "state_res": StateRes.V2}
_V3 = {**_V2, "event_format": EventFormat.V2}
_V4 = {**_V3, "event_format": EventFormat.V3}
_V5 = {**_V4, "enforce_key_validity": True}
_V6 = {
    **_V5,
    "redaction": RedactionRules.V6,
    "special_case_aliases_auth": False,
    "strict_canonicaljson": True,
    "limit_notifications_power_levels": True,
}
_V7 = {**_V6, "knock_join_rule": True}
_V8 = {**_V7, "restricted_join_rule": True}
_V9 = {**_V8, "redaction": RedactionRules.V9}
_V10 = {**_V9, "knock_restricted_join_rule": True, "enforce_int_power_levels": True}
_V11 = {**_V10, "redaction": RedactionRules.V11, "implicit_room_creator": True}
_V12 = {**_V11, "state_res": StateRes.V2_1, "room_id_from_create_event": True}

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {
    rv.identifier: rv
    for rv in (
        _v("1", **_V1),
        _v("2", **_V2),
        _v("3", **_V3),
        _v("4", **_V4),
        _v("5", **_V5),
        _v("6", **_V6),
        _v("7", **_V7),
        _v("8", **_V8),
        _v("9", **_V9),
        _v("10", **_V10),
        _v("11", **_V11),
        _v("12", **_V12),
    )
}

DEFAULT_ROOM_VERSION = "10"


def get_room_version(identifier: str) -> RoomVersion | None:
    return KNOWN_ROOM_VERSIONS.get(identifier)
