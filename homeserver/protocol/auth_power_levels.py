"""Authorization rules for m.room.power_levels events.

Spec: rooms v12 auth rule 10 (= v6-v11 rule 9, = v1-v5 rule 10). Comments cite the v12 number,
then v10-v11 and older numbers. Value checks: integers only where `enforce_int_power_levels`
(v10+), integer strings before, floats before v6 (see power_levels.validate_power_level).

Values are compared after parsing, so `"50"` -> `50` in a stringy room version is no change.
"""

from __future__ import annotations

from typing import Any

from homeserver.protocol.auth_context import AuthError, AuthState, is_valid_user_id
from homeserver.protocol.power_levels import (
    PowerLevel,
    parse_power_level,
    room_creators,
    validate_power_level,
)

_NAMED_LEVELS = (
    "users_default",
    "events_default",
    "state_default",
    "ban",
    "redact",
    "kick",
    "invite",
)
_ABSENT: Any = object()


def check_power_levels_event(state: AuthState) -> None:
    """Return if the m.room.power_levels event is allowed, raise AuthError if not."""
    event = state.event
    rv = state.room_version
    content = event.content

    if rv.enforce_int_power_levels:
        # Spec: rooms v12 10.1 / v10-v11 9.1: the named levels, if present, are integers.
        for name in _NAMED_LEVELS:
            if name in content and type(content[name]) is not int:
                raise AuthError(f"power level {name!r} is not an integer")
        # Spec: rooms v12 10.2 / v10-v11 9.2: `events` and `notifications` map to integers.
        for name in ("events", "notifications"):
            if name in content:
                mapping = content[name]
                if type(mapping) is not dict or any(type(v) is not int for v in mapping.values()):
                    raise AuthError(f"power levels {name!r} is not an object of integers")

    # Spec: rooms v12 10.3 / v10-v11 9.3 / v6-v9 9.1 / v1-v5 10.1: `users` maps valid user IDs to
    # integers (v1-v9: or integer strings; v1-v5: or floats, see the floaty fragment).
    users = content.get("users", _ABSENT)
    if users is not _ABSENT:
        if type(users) is not dict:
            raise AuthError("power levels 'users' is not an object")
        for user_id, value in users.items():
            if not is_valid_user_id(user_id):
                raise AuthError(f"power levels 'users' has an invalid user ID {user_id!r}")
            if validate_power_level(value, rv) is None:
                raise AuthError(f"power level of {user_id} is not an integer")
    else:
        users = {}

    # Spec: rooms v12 10.4 (room_id_from_create_event): creators cannot be listed in `users`.
    if rv.room_id_from_create_event:
        for creator in room_creators(state.create, rv):
            if creator in users:
                raise AuthError(f"room creator {creator} cannot be listed in power levels users")

    # Spec: rooms v12 10.5 / v10-v11 9.4 / v6-v9 9.2 / v1-v5 10.2: the first power levels event.
    previous = state.power_levels
    if previous is None:
        return
    old = previous.content
    sender_level = state.sender_level

    # Spec: rooms v12 10.6 / v10-v11 9.5 / v6-v9 9.3 / v1-v5 10.3: every named level added,
    # changed or removed must be at most the sender's level, before and after.
    for name in _NAMED_LEVELS:
        before = _level(old, name)
        after = _level(content, name)
        if before == after:
            continue
        if before is not None and before > sender_level:
            raise AuthError(f"cannot change {name!r} from a level above the sender's")
        if after is not None and after > sender_level:
            raise AuthError(f"cannot change {name!r} to a level above the sender's")

    # Spec: rooms v12 10.7-10.8 / v10-v11 9.6-9.7 / v6-v9 9.4-9.5 (events and notifications) /
    # v1-v5 10.4-10.5 (events only; `limit_notifications_power_levels` from v6).
    _check_entries(old.get("events"), content.get("events"), "events", sender_level)
    if rv.limit_notifications_power_levels:
        _check_entries(
            old.get("notifications"), content.get("notifications"), "notifications", sender_level
        )

    # Spec: rooms v12 10.9-10.10 / v10-v11 9.8-9.9 / v6-v9 9.6-9.7 / v1-v5 10.6-10.7.
    old_users = old.get("users")
    if type(old_users) is not dict:
        old_users = {}
    sender = state.sender
    for user_id in old_users.keys() | users.keys():
        before = parse_power_level(old_users.get(user_id))
        after = parse_power_level(users.get(user_id))
        if before == after:
            continue
        # 10.9: changing or removing someone else's entry needs a level above theirs.
        if before is not None and user_id != sender and before >= sender_level:
            raise AuthError(f"cannot change the level of {user_id}, not below the sender's")
        # 10.10: nobody can be given a level above the sender's.
        if after is not None and after > sender_level:
            raise AuthError(f"cannot give {user_id} a level above the sender's")


def _level(content: dict[str, Any], name: str) -> int | None:
    value = content.get(name)
    return None if value is None else parse_power_level(value)


def _check_entries(before_map: Any, after_map: Any, name: str, sender_level: PowerLevel) -> None:
    old = before_map if type(before_map) is dict else {}
    new = after_map if type(after_map) is dict else {}
    if not old and not new:
        return
    for key in old.keys() | new.keys():
        before = parse_power_level(old.get(key))
        after = parse_power_level(new.get(key))
        if before == after:
            continue
        # changed or removed: the current value must not exceed the sender's level.
        if before is not None and before > sender_level:
            raise AuthError(f"cannot change {name}[{key!r}] from a level above the sender's")
        # added or changed: the new value must not exceed the sender's level.
        if after is not None and after > sender_level:
            raise AuthError(f"cannot change {name}[{key!r}] to a level above the sender's")
