"""The authorization rules of room versions 1-12, and the auth events selection.

Spec: rooms/v1.md ... rooms/v12.md "Authorisation rules" (fragments v1-auth-rules, v3-auth-rules,
v8-auth-rules; v6, v7, v10, v11 and v12 inline), server-server API "Auth events selection".

Rule numbers move between versions; comments cite the v12 number first, e.g. `v12 8 / v6-v11 7 /
v1-v5 8`. Every behavioural difference is a RoomVersion flag, never a version string:

- special_case_aliases_auth (v1-v5)      m.room.aliases rule
- event_format V1 (v1-v2)                m.room.redaction rule (redact level or same domain)
- limit_notifications_power_levels (v6+), knock_join_rule (v7+), restricted_join_rule (v8+),
  knock_restricted_join_rule and enforce_int_power_levels (v10+), implicit_room_creator (v11+)
- room_id_from_create_event (v12)        room id = create event id, create event not cited,
                                         additional_creators, infinite creators

Membership rules live in auth_membership.py, power levels changes in auth_power_levels.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from homeserver.protocol.auth_context import (
    AUTHORISING_USER,
    CREATE,
    CREATE_KEY,
    JOIN_RULES_KEY,
    MEMBER,
    POWER_LEVELS,
    POWER_LEVELS_KEY,
    THIRD_PARTY_INVITE,
    AuthError,
    AuthState,
    StateKey,
    is_valid_user_id,
    server_of,
)
from homeserver.protocol.auth_membership import check_member_event
from homeserver.protocol.auth_power_levels import check_power_levels_event
from homeserver.protocol.events import Event
from homeserver.protocol.power_levels import required_level_for_event
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS, EventFormat, RoomVersion

__all__ = [
    "AuthError",
    "auth_types_for_event",
    "check_auth_events",
    "check_auth_rules",
]


def check_auth_rules(event: Event, auth_events: Mapping[StateKey, Event]) -> None:
    """Raise AuthError unless `event` passes the authorization rules of its room version.

    `auth_events` maps (type, state_key) to the state the event is checked against: its selected
    auth events, or the room state before it (extra entries are never read). In room version 12
    the create event must be in it under ("m.room.create", "") although v12 events do not cite it.

    The rules on the event's own `auth_events` list that need every cited event (duplicates and
    unexpected entries, v12 rule 3.1-3.2 / v1-v11 2.1-2.2) are checked by `check_auth_events`
    on receipt; here they are checked as far as the mapping allows.
    """
    rv = event.room_version
    event_type = event.type

    # Spec: rooms v12 1 / v1-v11 1.
    if event_type == CREATE:
        _check_create(event, rv)
        return

    auth_event_ids = event.auth_event_ids
    # Spec: rooms v12 3.1 / v1-v11 2.1: the same event cited twice is a duplicate (type, state_key).
    if len(auth_event_ids) > 1 and len(set(auth_event_ids)) != len(auth_event_ids):
        raise AuthError("auth_events lists the same event twice")

    create = auth_events.get(CREATE_KEY)
    if rv.room_id_from_create_event:
        # Spec: rooms v12 2: the room id is the id of an accepted create event, sigil `!` for `$`.
        room_id = event.room_id
        if create is None or create.event_id[1:] != room_id[1:] or not room_id.startswith("!"):
            raise AuthError(f"room id {room_id} is not the id of the room's create event")
        if create.rejected_reason is not None:
            raise AuthError("the room's create event was rejected")
        # Spec: rooms v12 3.2: the create event MUST NOT be selected as an auth event.
        if create.event_id in auth_event_ids:
            raise AuthError("auth_events must not cite the create event in this room version")
        state = AuthState(event, auth_events, create)
    else:
        # Spec: rooms v1-v11 2.4: an m.room.create event must be among the auth events.
        if create is None:
            raise AuthError("no m.room.create event among the auth events")
        state = AuthState(event, auth_events, create)
        state.vet(create)  # Spec: rooms v1-v11 2.3 and 2.5 for the create event.

    # Spec: rooms v12 4 / v1-v11 3: an unfederated room admits only senders of the creator's server.
    if create.content.get("m.federate", True) is False and server_of(event.sender) != server_of(
        create.sender
    ):
        raise AuthError("room is not federated and the sender is on another server")

    # Spec: rooms v1-v5 4 (special_case_aliases_auth): m.room.aliases is decided by its own rule.
    if event_type == "m.room.aliases" and rv.special_case_aliases_auth:
        state_key = event.state_key
        if state_key is None:  # 4.1
            raise AuthError("m.room.aliases event without state_key")
        if state_key != server_of(event.sender):  # 4.2
            raise AuthError("m.room.aliases state_key is not the sender's server")
        return  # 4.3

    # Spec: rooms v12 5 / v6-v11 4 / v1-v5 5.
    if event_type == MEMBER:
        check_member_event(state)
        return

    # Spec: rooms v12 6 / v6-v11 5 / v1-v5 6: the sender must be joined.
    sender = event.sender
    if state.membership(sender) != "join":
        raise AuthError(f"{sender} is not joined to the room")

    # Spec: rooms v12 7 / v6-v11 6 / v1-v5 7: m.room.third_party_invite needs the invite level.
    if event_type == THIRD_PARTY_INVITE:
        if state.sender_level < state.named_level("invite"):
            raise AuthError("sender's power level is below the invite level")
        return

    # Spec: rooms v12 8 / v6-v11 7 / v1-v5 8: the event type's required power level.
    state_key = event.state_key
    required = required_level_for_event(
        event_type, state_key is not None, state.power_levels_content
    )
    if required > state.sender_level:
        raise AuthError(f"sender's power level is below the {required} required for {event_type}")

    # Spec: rooms v12 9 / v6-v11 8 / v1-v5 9: state keys of the form @user belong to that user.
    if state_key is not None and state_key.startswith("@") and state_key != sender:
        raise AuthError("state_key starts with @ and is not the sender")

    # Spec: rooms v12 10 / v6-v11 9 / v1-v5 10.
    if event_type == POWER_LEVELS:
        check_power_levels_event(state)
        return

    # Spec: rooms v1-v2 11 (event_format V1): a redaction needs the redact level or the redacted
    # event's id on the redaction's own server. From v3 event ids have no server and redactions
    # are checked on application instead ("Handling redactions").
    if event_type == "m.room.redaction" and rv.event_format is EventFormat.V1:
        if state.sender_level >= state.named_level("redact"):
            return
        redacts = event.pdu.get("redacts")
        if type(redacts) is str and server_of(redacts) == server_of(event.event_id):
            return
        raise AuthError("sender cannot redact events of another server")

    # Spec: rooms v12 11 / v6-v11 10 / v3-v5 11 / v1-v2 12: otherwise, allow.


def _check_create(event: Event, rv: RoomVersion) -> None:
    # Spec: rooms v12 1.1 / v1-v11 1.1: the create event has no previous events.
    if event.pdu.get("prev_events"):
        raise AuthError("m.room.create event has prev_events")
    if rv.room_id_from_create_event:
        # Spec: rooms v12 1.2: the create event has no room_id (the room id is derived from it).
        if "room_id" in event.pdu:
            raise AuthError("m.room.create event has a room_id in this room version")
    else:
        # Spec: rooms v1-v11 1.2: the room id's server is the sender's server.
        room_id = event.pdu.get("room_id")
        if type(room_id) is not str or server_of(room_id) != server_of(event.sender):
            raise AuthError("room_id's server does not match the sender's server")
    content = event.content
    # Spec: rooms v12 1.3 / v1-v11 1.3: a room_version, if present, must be one we recognise.
    if "room_version" in content:
        version = content["room_version"]
        if type(version) is not str or version not in KNOWN_ROOM_VERSIONS:
            raise AuthError(f"unknown room version {version!r}")
    # Spec: rooms v1-v10 1.4 (before implicit_room_creator): content must name the creator.
    if not rv.implicit_room_creator and "creator" not in content:
        raise AuthError("m.room.create content has no creator")
    # Spec: rooms v12 1.4: additional_creators, if present, is an array of valid user IDs.
    if rv.room_id_from_create_event and "additional_creators" in content:
        creators = content["additional_creators"]
        if type(creators) is not list or not all(is_valid_user_id(u) for u in creators):
            raise AuthError("additional_creators is not an array of valid user IDs")
    # Spec: rooms v12 1.5 / v11 1.4 / v1-v10 1.5: otherwise, allow.


def auth_types_for_event(
    room_version: RoomVersion,
    event_type: str,
    sender: str,
    state_key: str | None,
    content: Mapping[str, Any],
) -> list[StateKey]:
    """The (type, state_key) pairs an event's auth_events may reference, without duplicates.

    Spec: server-server API "Auth events selection"; rooms v12: the create event is not
    selected (room_id_from_create_event). The m.room.create event itself has no auth events.
    """
    if event_type == CREATE:
        return []
    selected: list[StateKey] = [POWER_LEVELS_KEY, (MEMBER, sender)]
    if not room_version.room_id_from_create_event:
        selected.insert(0, CREATE_KEY)
    if event_type != MEMBER or state_key is None:
        return selected

    def add(key: StateKey) -> None:
        if key not in selected:
            selected.append(key)

    add((MEMBER, state_key))
    membership = content.get("membership")
    if membership in ("join", "invite", "knock"):
        add(JOIN_RULES_KEY)
    if membership == "invite":
        third_party_invite = content.get("third_party_invite")
        if type(third_party_invite) is dict:
            signed = third_party_invite.get("signed")
            token = signed.get("token") if type(signed) is dict else None
            if type(token) is str:
                add((THIRD_PARTY_INVITE, token))
    elif membership == "join" and room_version.restricted_join_rule:
        authoriser = content.get(AUTHORISING_USER)
        if type(authoriser) is str:
            add((MEMBER, authoriser))
    return selected


def check_auth_events(
    event: Event, auth_event_list: Iterable[Event], *, create_event: Event | None = None
) -> dict[StateKey, Event]:
    """Check the event's own `auth_events` (the events its ids resolve to, in any order) and
    return them as the mapping `check_auth_rules` takes.

    Spec: v12 3.1-3.5 / v1-v11 2.1-2.5 ("Considering the event's auth_events"). For room version
    12 pass the room's create event as `create_event`; it is added to the returned mapping
    (v12 rule 2 is then checked by `check_auth_rules`).
    """
    rv = event.room_version
    room_id = event.room_id
    content = event.content
    expected = auth_types_for_event(rv, event.type, event.sender, event.state_key, content)
    by_key: dict[StateKey, Event] = {}
    for auth_event in auth_event_list:
        key = (auth_event.type, auth_event.state_key)
        # Spec: rooms v12 3.1 / v1-v11 2.1: no duplicate (type, state_key).
        if key in by_key:
            raise AuthError(f"auth_events has two entries for {key}")
        # Spec: rooms v12 3.2 / v1-v11 2.2: only the pairs of the auth events selection.
        if key not in expected:
            raise AuthError(f"auth_events has an unexpected entry for {key}")
        # Spec: rooms v12 3.3 / v1-v11 2.3: no rejected auth events.
        if auth_event.rejected_reason is not None:
            raise AuthError(f"auth event {auth_event.event_id} was rejected")
        # Spec: rooms v12 3.5 / v1-v11 2.5: all in the event's room.
        if auth_event.room_id != room_id:
            raise AuthError(f"auth event {auth_event.event_id} is in another room")
        by_key[key] = auth_event  # type: ignore[index]  # state_key is str: key is expected
    if rv.room_id_from_create_event:
        if create_event is not None:
            by_key[CREATE_KEY] = create_event
    elif event.type != CREATE and CREATE_KEY not in by_key:
        # Spec: rooms v1-v11 2.4: the create event must be among them.
        raise AuthError("no m.room.create event among the auth events")
    return by_key
