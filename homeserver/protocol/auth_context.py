"""What every part of the authorization rules shares: `AuthError` and `AuthState`, the view of
the auth events of the one event being checked.

Spec: rooms/v*.md "Authorisation rules"; server-server API "Auth events selection".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from homeserver.protocol.events import Event
from homeserver.protocol.identifiers import InvalidIdentifier, UserID
from homeserver.protocol.power_levels import PowerLevel, named_level, user_power_level

CREATE: Final = "m.room.create"
MEMBER: Final = "m.room.member"
POWER_LEVELS: Final = "m.room.power_levels"
JOIN_RULES: Final = "m.room.join_rules"
THIRD_PARTY_INVITE: Final = "m.room.third_party_invite"

CREATE_KEY: Final = (CREATE, "")
POWER_LEVELS_KEY: Final = (POWER_LEVELS, "")
JOIN_RULES_KEY: Final = (JOIN_RULES, "")

AUTHORISING_USER: Final = "join_authorised_via_users_server"

StateKey = tuple[str, str]


class AuthError(Exception):
    """An event is not authorised; `reason` says which rule refused it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def server_of(identifier: str) -> str:
    """The server name of a `@user:server` / `$event:server` identifier (after the first ':').

    Server names may carry a port (`example.org:8448`), hence the first colon, not the last.
    """
    return identifier.partition(":")[2]


def is_valid_user_id(value: Any) -> bool:
    """Whether `value` is a user ID servers must accept in events (the validation applied to
    `sender`): spec appendices "User Identifiers" with "Historical User IDs" localparts."""
    try:
        UserID.parse_historical(value)
    except InvalidIdentifier:
        return False
    return True


class AuthState:
    """The auth events of one event, read the way the rules read them.

    Every auth event a rule looks at is vetted on first use (so extra entries of the mapping
    are never touched):
    - Spec rooms v12 3.5 / v11 2.5: it must belong to the event's room.
    - Spec rooms v12 3.3 / v11 2.3: if the event cites it in `auth_events`, it must not have been
      rejected. (State maps handed in by state resolution may legitimately hold events that were
      rejected against *their* state and re-admitted by the iterative auth checks; only the
      event's own citations are covered by this rule.)
    """

    __slots__ = (
        "_auth_events",
        "_sender_level",
        "create",
        "event",
        "power_levels",
        "power_levels_content",
        "room_id",
        "room_version",
        "sender",
    )

    def __init__(self, event: Event, auth_events: Mapping[StateKey, Event], create: Event) -> None:
        self.event = event
        self.room_version = event.room_version
        self.sender = event.sender
        self.room_id = event.room_id
        self.create = create
        self._auth_events = auth_events
        self._sender_level: PowerLevel | None = None
        power_levels = self.get(POWER_LEVELS_KEY)
        self.power_levels = power_levels
        self.power_levels_content = power_levels.content if power_levels is not None else None

    def get(self, key: StateKey) -> Event | None:
        found = self._auth_events.get(key)
        if found is not None:
            self.vet(found)
        return found

    def vet(self, auth_event: Event) -> None:
        if auth_event.room_id != self.room_id:
            raise AuthError(
                f"auth event {auth_event.event_id} belongs to room {auth_event.room_id}, "
                f"not {self.room_id}"
            )
        if (
            auth_event.rejected_reason is not None
            and auth_event.event_id in self.event.auth_event_ids
        ):
            raise AuthError(f"auth event {auth_event.event_id} was rejected")

    def membership(self, user_id: str) -> str | None:
        """`content.membership` of the user's current m.room.member event, None if none."""
        member = self.get((MEMBER, user_id))
        if member is None:
            return None
        membership = member.content.get("membership")
        return membership if type(membership) is str else None

    def level(self, user_id: str) -> PowerLevel:
        if user_id == self.sender:
            return self.sender_level
        return user_power_level(user_id, self.power_levels, self.create, self.room_version)

    @property
    def sender_level(self) -> PowerLevel:
        level = self._sender_level
        if level is None:
            level = user_power_level(self.sender, self.power_levels, self.create, self.room_version)
            self._sender_level = level
        return level

    def named_level(self, name: str) -> int:
        return named_level(self.power_levels_content, name)
