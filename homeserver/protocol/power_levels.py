"""Power levels: defaults, value parsing, a user's level and the level an event type requires.

Spec: client-server API `m.room.power_levels`; server-server API "Definitions" (required power
level, invite/kick/ban/redact level); rooms/fragments/v1-stringy-power-levels.md and
v1-floaty-power-levels.md (value encodings before v10); rooms/v12.md (infinite creators).

Reading and validating are separate on purpose:

- `parse_power_level` READS a value of a power levels event that is already in the room. It is
  lenient (int, integer string, finite float) because an accepted event can only hold what its
  room version allowed: the auth rules rejected everything else when the event arrived.
- `validate_power_level` is what the auth rules apply to a NEW power levels event; it accepts
  exactly what the room version permits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import RoomVersion

# Spec rooms v12 "Authorisation rules": the power level of room creators is infinitely high.
# math.inf compares greater than every int, so the rules' comparisons need no special case.
INFINITE_POWER_LEVEL: Final = math.inf

PowerLevel = int | float  # a float only ever as INFINITE_POWER_LEVEL

# Spec: m.room.power_levels content and server-server "Definitions". state_default is 50 whether
# or not there is a power levels event (MSC1304; the older "0 without a PL event" text was removed
# from the spec, matrix-spec#1479). invite is 0 in every room version.
USERS_DEFAULT: Final = 0
EVENTS_DEFAULT: Final = 0
STATE_DEFAULT: Final = 50
BAN_DEFAULT: Final = 50
KICK_DEFAULT: Final = 50
REDACT_DEFAULT: Final = 50
INVITE_DEFAULT: Final = 0
NOTIFICATIONS_ROOM_DEFAULT: Final = 50
# Spec m.room.power_levels, users_default note: rooms v1-v11 without a power levels event give the
# creator 100 (v12 creators are infinite instead).
CREATOR_LEVEL_WITHOUT_POWER_LEVELS: Final = 100

NAMED_LEVEL_DEFAULTS: Final[Mapping[str, int]] = {
    "users_default": USERS_DEFAULT,
    "events_default": EVENTS_DEFAULT,
    "state_default": STATE_DEFAULT,
    "ban": BAN_DEFAULT,
    "kick": KICK_DEFAULT,
    "redact": REDACT_DEFAULT,
    "invite": INVITE_DEFAULT,
}

# Spec v1-stringy-power-levels: base 10 digits, leading zeroes allowed, one optional sign, any
# leading/trailing whitespace. re.ASCII keeps \s and [0-9] to ASCII (int() alone would also take
# "1_000" and non-ASCII digits, which the spec does not allow).
_STRINGY_INT = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)


def _parse_string(value: str) -> int | None:
    if _STRINGY_INT.fullmatch(value) is None:
        return None
    try:
        return int(value)
    except ValueError:  # more digits than int() accepts (sys.int_info.str_digits_check_threshold)
        return None


def parse_power_level(value: Any) -> int | None:
    """Read a power level value of an accepted event; None if it is not a power level at all.

    Spec v1-stringy-power-levels (integer strings) and v1-floaty-power-levels (floats truncated
    at the decimal point, non-finite values invalid). Booleans are never power levels.
    """
    kind = type(value)
    if kind is int:
        return value
    if kind is str:
        return _parse_string(value)
    if kind is float and math.isfinite(value):
        return int(value)  # truncation toward zero: 50.57 -> 50, -5.7 -> -5
    return None


def validate_power_level(value: Any, room_version: RoomVersion) -> int | None:
    """A power level value as a NEW power levels event of `room_version` may carry it, or None.

    Spec rooms v10 auth rule 9.1-9.3 (`enforce_int_power_levels`): integers only. Before v10
    integer strings are allowed (v1-stringy-power-levels); before v6 (`strict_canonicaljson` off)
    floats too (v1-floaty-power-levels), Infinity and NaN excepted.
    """
    kind = type(value)
    if kind is int:
        return value
    if room_version.enforce_int_power_levels:
        return None
    if kind is str:
        return _parse_string(value)
    if kind is float and not room_version.strict_canonicaljson and math.isfinite(value):
        return int(value)
    return None


def named_level(power_levels_content: Mapping[str, Any] | None, name: str) -> int:
    """users_default, events_default, state_default, ban, kick, redact or invite, with defaults.

    A value that is no power level (only possible before v10, where the auth rules do not check
    these keys) counts as absent.
    """
    default = NAMED_LEVEL_DEFAULTS[name]
    if power_levels_content is None:
        return default
    value = power_levels_content.get(name)
    if value is None:
        return default
    level = parse_power_level(value)
    return default if level is None else level


def notification_level(power_levels_content: Mapping[str, Any] | None, key: str = "room") -> int:
    """The level needed to trigger a `key` notification (spec: notifications.room defaults to 50).

    Keys other than `room` have no specified default; they default to 50 as well.
    """
    if power_levels_content is not None:
        notifications = power_levels_content.get("notifications")
        if isinstance(notifications, dict) and key in notifications:
            level = parse_power_level(notifications[key])
            if level is not None:
                return level
    return NOTIFICATIONS_ROOM_DEFAULT


def required_level_for_event(
    event_type: str, is_state: bool, power_levels_content: Mapping[str, Any] | None
) -> int:
    """Spec server-server "Definitions", required power level: `events[type]`, else
    `state_default` for state events or `events_default` for the others."""
    if power_levels_content is not None:
        events = power_levels_content.get("events")
        if type(events) is dict:
            value = events.get(event_type)
            if value is not None:
                level = parse_power_level(value)
                if level is not None:
                    return level
    return named_level(power_levels_content, "state_default" if is_state else "events_default")


def is_room_creator(user_id: str, create_event: Event | None, room_version: RoomVersion) -> bool:
    """Whether `user_id` is a creator of the room.

    Spec rooms v12 (`room_id_from_create_event`): the create event's sender plus every entry of
    `content.additional_creators`. Rooms v11 (`implicit_room_creator`): the sender. Rooms v1-v10:
    `content.creator`.
    """
    if create_event is None:
        return False
    if room_version.room_id_from_create_event:
        if user_id == create_event.sender:
            return True
        additional = create_event.content.get("additional_creators")
        return type(additional) is list and user_id in additional
    if room_version.implicit_room_creator:
        return user_id == create_event.sender
    return user_id == create_event.content.get("creator")


def room_creators(create_event: Event, room_version: RoomVersion) -> list[str]:
    """All creators of the room (see `is_room_creator`), the create event's sender first."""
    if room_version.room_id_from_create_event:
        creators = [create_event.sender]
        additional = create_event.content.get("additional_creators")
        if type(additional) is list:
            creators.extend(u for u in additional if type(u) is str and u not in creators)
        return creators
    if room_version.implicit_room_creator:
        return [create_event.sender]
    creator = create_event.content.get("creator")
    return [creator] if type(creator) is str else []


def user_power_level(
    user_id: str,
    power_levels_event: Event | None,
    create_event: Event | None,
    room_version: RoomVersion,
) -> PowerLevel:
    """The power level of `user_id` given the room's current power levels and create events.

    Spec rooms v12: creators have INFINITE_POWER_LEVEL, with or without a power levels event.
    Spec m.room.power_levels: `users[user_id]`, else `users_default` (0); without a power levels
    event the creator has 100 in rooms v1-v11 and every other user 0.
    """
    if room_version.room_id_from_create_event and is_room_creator(
        user_id, create_event, room_version
    ):
        return INFINITE_POWER_LEVEL
    if power_levels_event is None:
        if not room_version.room_id_from_create_event and is_room_creator(
            user_id, create_event, room_version
        ):
            return CREATOR_LEVEL_WITHOUT_POWER_LEVELS
        return USERS_DEFAULT
    content = power_levels_event.content
    users = content.get("users")
    if type(users) is dict:
        value = users.get(user_id)
        if value is not None:
            level = parse_power_level(value)
            if level is not None:
                return level
    return named_level(content, "users_default")
