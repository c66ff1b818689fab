"""Another server invites one of our users: PUT /_matrix/federation/v2/invite/{roomId}/{eventId}.

Spec: server-server API "Inviting to a room" (invite v2: "Servers MUST apply certain
validation ... SHOULD return M_INVALID_PARAM"), client-server "Stripped state". We check the
event (signatures, hash, shape), ask the `invite` policy, co-sign it and hand it back.

When none of our users is in the room we do not hold its state; the invite is then all we know.
We keep the minimal records /sync, /join and /leave need: the room row (its version), the invite
event as an outlier carrying the stripped state in unsigned.invite_room_state (where Matrix
servers conventionally keep it; unsigned is outside hashes and signatures), and the invitee's
current-state membership row at a fresh stream position. When a local user is already in the
room, the invite also reaches us through /send, which stores it in the timeline instead.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from compliance.hooks import Hook, records_policy_denials
from compliance.hooks import run as run_policy
from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.events import Event
from homeserver.protocol.identifiers import InvalidIdentifier, UserID
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.protocol.signing import sign_event
from homeserver.services.federation.membership_serve import checked_pdu, is_resident
from homeserver.services.signing_keys import server_signing_key
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage import state as state_store
from homeserver.storage.accounts import get_account
from homeserver.storage.stream import next_stream_positions

MEMBER = "m.room.member"
MAX_INVITE_STATE = 50


def _invalid(message: str) -> MatrixError:
    return MatrixError(400, Errcode.INVALID_PARAM, message)


def _server(user_id: Any) -> str:
    try:
        return str(UserID.parse_historical(user_id).server_name)
    except (InvalidIdentifier, TypeError):
        raise _invalid(f"Invalid user id {user_id!r}") from None


def stripped_invite_state(raw: Any, room_id: str) -> list[dict[str, Any]]:
    """Validate invite_room_state (full PDUs or stripped events) and strip it for clients."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_INVITE_STATE:
        raise _invalid("invite_room_state must be a list of events")
    out = []
    for ev in raw:
        if (not isinstance(ev, dict) or not isinstance(ev.get("type"), str)
                or not isinstance(ev.get("state_key"), str)
                or not isinstance(ev.get("content"), dict)
                or not isinstance(ev.get("sender", ""), str)):
            raise _invalid("invite_room_state holds an event that is not a state event")
        if "room_id" in ev and ev["room_id"] != room_id:
            raise _invalid("invite_room_state holds an event of another room")
        out.append({k: ev[k] for k in ("type", "state_key", "content", "sender") if k in ev})
    return out


async def receive_invite(origin: str, room_id: str, event_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
        raise MatrixError(400, Errcode.BAD_JSON, "Expected {room_version, event}")
    version = body.get("room_version")
    rv = KNOWN_ROOM_VERSIONS.get(version) if isinstance(version, str) else None
    if rv is None:
        # Spec invite v2: 400 M_INCOMPATIBLE_ROOM_VERSION when we cannot join such a room.
        raise MatrixError(400, Errcode.INCOMPATIBLE_ROOM_VERSION,
                          f"Room version {version!r} is not supported", room_version=version)
    event = await checked_pdu(body["event"], rv)
    stripped = stripped_invite_state(body.get("invite_room_state"), room_id)
    signed = await sync_to_async(accept_invite)(origin, room_id, event_id, event, stripped)
    return {"event": signed}


@records_policy_denials
def accept_invite(origin: str, room_id: str, event_id: str, event: Event,
                  stripped: list[dict[str, Any]]) -> dict[str, Any]:
    ours = settings.PALISADE.server_name
    if event.event_id != event_id:
        raise _invalid(f"Event id {event_id} does not match the event ({event.event_id})")
    if event.room_id != room_id:
        raise _invalid("The event is for another room")
    if event.type != MEMBER or event.content.get("membership") != "invite":
        raise _invalid("Expected an m.room.member event with membership invite")
    if _server(event.sender) != origin:
        raise _invalid(f"The sender is not a user of {origin}")
    invitee = event.state_key
    if _server(invitee) != ours:
        raise _invalid("The invitee is not a user of this server")
    account = get_account(invitee or "")
    if account is None or account.deactivated:
        raise MatrixError(404, Errcode.NOT_FOUND, f"Unknown user {invitee}")
    known = room_store.room_version(room_id)
    if known is not None and known.identifier != event.room_version.identifier:
        raise _invalid("room_version does not match the room")
    run_policy(Hook.INVITE, {
        "actor": event.sender, "actor_type": ActorType.REMOTE_SERVER, "target": invitee,
        "room_id": room_id, "origin": origin,
    })
    # Spec invite v2 200: "The event with the invited server's signature added".
    signed = sign_event(event.pdu, event.room_version, ours, server_signing_key())
    with transaction.atomic():
        if not is_resident(room_id):
            _store_invite(Event(event.event_id, event.room_version,
                                {**signed, "unsigned": {**event.pdu.get("unsigned", {}),
                                                        "invite_room_state": stripped}}))
        record(AuditAction.MEMBERSHIP_CHANGED, actor=event.sender,
               actor_type=ActorType.REMOTE_SERVER, target=room_id,
               details={"user_id": invitee, "membership": "invite", "origin": origin,
                        "event_id": event.event_id})
    return signed


def _store_invite(event: Event) -> None:
    room_id = event.room_id
    if room_store.room_version(room_id) is None:
        room_store.insert_room(room_id, event.room_version.identifier, event.sender,
                               event.origin_server_ts)
    if event.event_id not in event_store.get_event_records([event.event_id]):
        event_store.persist_event(event, stream_ordering=None, state_group=None, outlier=True)
    position = next_stream_positions()
    invitee = event.state_key or ""
    state_store.apply_current_state_delta(room_id, {(MEMBER, invitee): event.event_id},
                                          position, {invitee: "invite"})
    notify_after_commit(position, room_ids=[room_id], user_ids=[invitee])


def invite_room_state(event: Event) -> list[dict[str, Any]] | None:
    """The stripped state a remote invite came with (None for invites to rooms we hold)."""
    state = event.pdu.get("unsigned", {}).get("invite_room_state")
    return state if isinstance(state, list) else None
