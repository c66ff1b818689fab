"""Answering other servers' membership handshakes for rooms we are in: make_join / send_join,
make_leave / send_leave, make_knock / send_knock.

Spec: server-server API "Joining Rooms" (GET /v1/make_join, PUT /v2/send_join), "Knocking
upon a room" (GET /v1/make_knock, PUT /v1/send_knock), "Leaving Rooms (Rejecting Invites)"
(GET /v1/make_leave, PUT /v2/send_leave). The resident server proposes a template event
(prev_events, auth_events and depth from its view of the room), the remote server signs it
and sends it back; we check it, authorise it against the state before it, persist it and pass
it on to the other servers in the room.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.effects.federation_outbox import enqueue_pdu
from homeserver.protocol.auth_rules import AuthError, check_auth_rules
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.events import Event
from homeserver.protocol.identifiers import InvalidIdentifier, UserID
from homeserver.protocol.power_levels import named_level, user_power_level
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.protocol.signing import sign_event
from homeserver.services.events.append import append_local_event
from homeserver.services.federation.pdu_checks import PduRejected, check_pdu
from homeserver.services.federation.persist import persist_remote_event
from homeserver.services.federation.serve import auth_chain, server_of
from homeserver.services.signing_keys import server_signing_key
from homeserver.services.sync.rooms import INVITE_STATE_TYPES
from homeserver.storage import events as event_store
from homeserver.storage import federation_outbox as outbox_store
from homeserver.storage import rooms as room_store
from homeserver.storage import state as state_store

MEMBER = "m.room.member"
AUTHORISING_USER = "join_authorised_via_users_server"
RESTRICTED_RULES = ("restricted", "knock_restricted")


def _ours() -> str:
    return settings.PALISADE.server_name


def local_joined_members(room_id: str) -> list[str]:
    suffix = ":" + _ours()
    return [u for u in state_store.room_members(room_id) if u.endswith(suffix)]


def is_resident(room_id: str) -> bool:
    """We hold the room's state and take part in it: one of our users is joined."""
    return room_store.room_version(room_id) is not None and bool(local_joined_members(room_id))


def servers_in_room(room_id: str) -> set[str]:
    return outbox_store.servers_in_room(room_id)


def _check_user_of_origin(origin: str, user_id: str) -> None:
    try:
        server = str(UserID.parse(user_id).server_name)
    except (InvalidIdentifier, TypeError):
        raise MatrixError(400, Errcode.INVALID_PARAM, f"Invalid user id {user_id!r}") from None
    if server != origin:
        # Spec "Joining Rooms": a server may only ask on behalf of its own users.
        raise MatrixError(403, Errcode.FORBIDDEN, f"{user_id} is not a user of {origin}")


def _room(room_id: str) -> RoomVersion:
    rv = room_store.room_version(room_id)
    if rv is None or not is_resident(room_id):
        raise MatrixError(404, Errcode.NOT_FOUND, f"Unknown room {room_id}")
    return rv


def _check_version_supported(rv: RoomVersion, versions: list[str]) -> None:
    # Spec: make_join/make_knock `ver`: the versions the joining server supports (default "1").
    if rv.identifier not in (versions or ["1"]):
        raise MatrixError(400, Errcode.INCOMPATIBLE_ROOM_VERSION,
                          f"Your server does not support room version {rv.identifier}",
                          room_version=rv.identifier)


def _current_event(room_id: str, key: tuple[str, str]) -> Event | None:
    eid = state_store.current_state_ids(room_id, [key]).get(key)
    return event_store.get_event(eid) if eid else None


def _restricted_authoriser(room_id: str, rv: RoomVersion, user_id: str) -> str | None:
    """Spec: client-server "Restricted rooms", server-server "Joining Rooms" (restricted): a
    resident server vouches for a join that satisfies one of the room's `allow` conditions by
    naming one of its users who may invite (join_authorised_via_users_server)."""
    join_rules = _current_event(room_id, ("m.room.join_rules", ""))
    rule = join_rules.content.get("join_rule") if join_rules else None
    if rule not in RESTRICTED_RULES or not rv.restricted_join_rule:
        return None
    if rule == "knock_restricted" and not rv.knock_restricted_join_rule:
        return None
    current = state_store.membership_of(room_id, user_id)
    if current and current[0] in ("invite", "join"):
        return None  # Spec rooms v8+ auth rule 4.3.5.1: no authorising server needed.
    allow = join_rules.content.get("allow") if join_rules else None
    rooms = [a.get("room_id") for a in (allow if isinstance(allow, list) else [])
             if isinstance(a, dict) and a.get("type") == "m.room_membership"
             and isinstance(a.get("room_id"), str)]
    known = [r for r in rooms if is_resident(r)]
    if not known:
        raise MatrixError(400, Errcode.UNABLE_TO_AUTHORISE_JOIN,
                          "This server cannot check the room's join conditions")
    if not any((state_store.membership_of(r, user_id) or ("",))[0] == "join" for r in known):
        raise MatrixError(403, Errcode.FORBIDDEN, "You do not meet the room's join conditions")
    create = _current_event(room_id, ("m.room.create", ""))
    power = _current_event(room_id, ("m.room.power_levels", ""))
    needed = named_level(power.content if power else None, "invite")
    for member in sorted(local_joined_members(room_id)):
        if user_power_level(member, power, create, rv) >= needed:
            return member
    raise MatrixError(400, Errcode.UNABLE_TO_GRANT_JOIN,
                      "No user of this server can authorise your join; try another server")


def make_membership(origin: str, room_id: str, user_id: str, membership: str,
                    versions: list[str] | None = None) -> dict[str, Any]:
    """A template m.room.member event for `user_id` (of `origin`) built on our view of the room,
    authorised against our current state (403 when the auth rules refuse it)."""
    _check_user_of_origin(origin, user_id)
    rv = _room(room_id)
    if membership in ("join", "knock"):
        _check_version_supported(rv, versions or [])
    if membership == "knock" and not rv.knock_join_rule:
        raise MatrixError(400, Errcode.INCOMPATIBLE_ROOM_VERSION,
                          f"Room version {rv.identifier} does not support knocking",
                          room_version=rv.identifier)
    content: dict[str, Any] = {"membership": membership}
    if membership == "join":
        authoriser = _restricted_authoriser(room_id, rv, user_id)
        if authoriser is not None:
            content[AUTHORISING_USER] = authoriser
    # Built and auth-checked exactly as a local event would be, never persisted.
    event = append_local_event(room_id=room_id, room_version=rv, sender=user_id,
                               event_type=MEMBER, content=content, state_key=user_id)
    template = {k: v for k, v in event.pdu.items() if k not in ("signatures", "hashes")}
    if not rv.has_event_id_field:
        template.pop("event_id", None)
    if "origin" in template:  # rooms v1-v10: the joining server is the origin
        template["origin"] = origin
    return {"event": template, "room_version": rv.identifier}


def _check_submitted(origin: str, room_id: str, event_id: str, event: Event,
                     membership: str) -> None:
    """Spec: send_join/send_leave/send_knock "MUST apply certain validation" (M_INVALID_PARAM)."""
    if event.event_id != event_id:
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          f"Event id {event_id} does not match the event ({event.event_id})")
    if event.room_id != room_id:
        raise MatrixError(400, Errcode.INVALID_PARAM, "The event is for another room")
    if event.type != MEMBER or event.content.get("membership") != membership:
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          f"Expected an m.room.member event with membership {membership}")
    if event.state_key != event.sender:
        raise MatrixError(400, Errcode.INVALID_PARAM, "state_key must be the sender")
    try:
        sender_server = str(UserID.parse_historical(event.sender).server_name)
    except (InvalidIdentifier, TypeError):
        raise MatrixError(400, Errcode.INVALID_PARAM, "Invalid sender") from None
    if sender_server != origin:
        raise MatrixError(400, Errcode.INVALID_PARAM, f"The sender is not a user of {origin}")


def _auth_against_current(event: Event) -> None:
    """Spec: "Checks performed on receipt of a PDU" step 5-6: the event must be allowed by the
    state before it; a membership handshake builds on our current state."""
    state = state_store.current_state_ids(event.room_id)
    wanted = [eid for key, eid in state.items()
              if key[0] != MEMBER or key[1] in (event.sender, event.content.get(AUTHORISING_USER))]
    events = event_store.get_events(wanted)
    auth_map = {k: events[eid] for k, eid in state.items() if eid in events}
    try:
        check_auth_rules(event, auth_map)
    except AuthError as e:
        raise MatrixError(403, Errcode.FORBIDDEN, f"Not allowed: {e.reason}") from None


async def checked_pdu(pdu: Any, rv: RoomVersion) -> Event:
    """check_pdu (format, signatures, content hash) with its rejection as 400 M_INVALID_PARAM.
    A redacted copy (content hash mismatch) is refused too: a handshake event must be whole."""
    if not isinstance(pdu, dict):
        raise MatrixError(400, Errcode.BAD_JSON, "The request body must be an event")
    try:
        event = await check_pdu(pdu, rv)
    except PduRejected as e:
        raise MatrixError(400, Errcode.INVALID_PARAM, f"Invalid event: {e}") from None
    if event.pdu.get("content") != pdu.get("content"):
        raise MatrixError(400, Errcode.INVALID_PARAM, "Invalid event: content hash mismatch")
    return event


def _cosign_if_we_authorise(pdu: Any, rv: RoomVersion) -> Any:
    """Spec rooms v8+ auth rule 4.2: a join naming one of our users as authoriser must carry our
    signature; we add it on send_join (server-server "Joining Rooms", restricted rooms) before
    the signature checks, which require it. The sender's signature covers the content hash, so
    a tampered event still fails them; every other check follows as for any join."""
    content = pdu.get("content") if isinstance(pdu, dict) else None
    authoriser = content.get(AUTHORISING_USER) if isinstance(content, dict) else None
    if not isinstance(authoriser, str) or ":" not in authoriser or server_of(
            authoriser) != _ours():
        return pdu
    try:
        return sign_event(pdu, rv, _ours(), server_signing_key())
    except (TypeError, ValueError, KeyError, AttributeError):
        return pdu  # malformed: check_pdu refuses it


def _persist_and_forward(origin: str, event: Event) -> dict[tuple[str, str], str]:
    """Authorise, persist and queue for the room's other servers; returns the state before."""
    with transaction.atomic():
        room_store.lock_room(event.room_id)
        _auth_against_current(event)
        state_before = state_store.current_state_ids(event.room_id)
        others = servers_in_room(event.room_id) - {origin, _ours()}
        outcome = persist_remote_event(event)
        if outcome != "accepted":
            raise MatrixError(403, Errcode.FORBIDDEN, f"The event was {outcome}")
        record(AuditAction.MEMBERSHIP_CHANGED, actor=event.sender,
               actor_type=ActorType.REMOTE_SERVER, target=event.room_id,
               details={"user_id": event.state_key, "origin": origin,
                        "membership": event.content.get("membership"),
                        "event_id": event.event_id})
        # Spec "Joining Rooms": the resident server sends the new event to the room's servers.
        _forward(event, others)
    return state_before


def _forward(event: Event, destinations: set[str]) -> None:
    if destinations:
        enqueue_pdu(event, sorted(destinations))  # in this transaction; sent after commit


async def send_join(origin: str, room_id: str, event_id: str, pdu: Any) -> dict[str, Any]:
    rv = room_store.room_version(room_id)
    if rv is None:
        raise MatrixError(404, Errcode.NOT_FOUND, f"Unknown room {room_id}")
    event = await checked_pdu(_cosign_if_we_authorise(pdu, rv), rv)
    return await sync_to_async(_send_join)(origin, room_id, event_id, event)


def _send_join(origin: str, room_id: str, event_id: str, event: Event) -> dict[str, Any]:
    _room(room_id)
    _check_submitted(origin, room_id, event_id, event, "join")
    state_before = _persist_and_forward(origin, event)
    state_events = event_store.get_events(state_before.values())
    chain = auth_chain(list(state_before.values()) + event.auth_event_ids)
    return {
        "origin": _ours(),
        "state": [e.pdu for e in state_events.values()],
        "auth_chain": [e.pdu for e in chain],
        "event": event.pdu,
        "members_omitted": False,
        "servers_in_room": sorted(servers_in_room(room_id) | {_ours()}),
    }


async def send_leave(origin: str, room_id: str, event_id: str, pdu: Any) -> dict[str, Any]:
    rv = room_store.room_version(room_id)
    if rv is None:
        raise MatrixError(404, Errcode.NOT_FOUND, f"Unknown room {room_id}")
    event = await checked_pdu(pdu, rv)
    def run() -> None:
        _room(room_id)
        _check_submitted(origin, room_id, event_id, event, "leave")
        _persist_and_forward(origin, event)

    await sync_to_async(run)()
    return {}


async def send_knock(origin: str, room_id: str, event_id: str, pdu: Any) -> dict[str, Any]:
    rv = room_store.room_version(room_id)
    if rv is None:
        raise MatrixError(404, Errcode.NOT_FOUND, f"Unknown room {room_id}")
    if not rv.knock_join_rule:
        raise MatrixError(400, Errcode.INCOMPATIBLE_ROOM_VERSION,
                          f"Room version {rv.identifier} does not support knocking",
                          room_version=rv.identifier)
    event = await checked_pdu(pdu, rv)
    def run() -> dict[str, Any]:
        _room(room_id)
        _check_submitted(origin, room_id, event_id, event, "knock")
        _persist_and_forward(origin, event)
        # Spec: send_knock answers with the stripped state the knocker's clients show.
        return {"knock_room_state": stripped_state(room_id)}

    return await sync_to_async(run)()


def stripped_state(room_id: str) -> list[dict[str, Any]]:
    """Spec client-server "Stripped state": type, state_key, content and sender."""
    keys = [(t, "") for t in INVITE_STATE_TYPES]
    ids = state_store.current_state_ids(room_id, keys)
    events = event_store.get_events(ids.values())
    return [{"type": e.type, "state_key": e.state_key, "content": e.content, "sender": e.sender}
            for e in events.values()]


def invite_state_pdus(room_id: str) -> list[dict[str, Any]]:
    """The invite_room_state we send with an invite: the full PDUs of the stripped-state types
    (spec v1.16: it MUST contain the m.room.create PDU, formatted per the room version)."""
    keys = [(t, "") for t in INVITE_STATE_TYPES]
    ids = state_store.current_state_ids(room_id, keys)
    return [e.pdu for e in event_store.get_events(ids.values()).values()]


def supported_versions() -> list[str]:
    return list(KNOWN_ROOM_VERSIONS)
