"""Invites across servers, both ways.

In: another server invites one of our users, PUT /_matrix/federation/v2/invite/{roomId}/{eventId}
(spec: server-server API "Inviting to a room", invite v2: "Servers MUST apply certain
validation ... SHOULD return M_INVALID_PARAM"; client-server "Stripped state"). We check the
event (signatures, hash, shape), ask the `invite` policy, co-sign it and hand it back.
When none of our users is in the room we do not hold its state; the invite is then all we know.
We keep the minimal records /sync, /join and /leave need: the room row (its version), the invite
event as an outlier carrying the stripped state in unsigned.invite_room_state (where Matrix
servers conventionally keep it; unsigned is outside hashes and signatures), and the invitee's
current-state membership row at a fresh stream position. When a local user is already in the
room, the invite also reaches us through /send, which stores it in the timeline instead.

Out: one of our users invites a user of another server. The invite is built and authorised as
any local event, co-signed by the invitee's server, then persisted with both signatures (the
outbound queue sends it to the room's servers). REQUIREMENTS.md A_25534: never to a server the
federation allow/deny lists refuse.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from compliance.federation_access import decide
from compliance.hooks import Deny, Hook, PolicyDenied, records_policy_denials
from compliance.hooks import run as run_policy
from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.events import Event
from homeserver.protocol.hashing import compute_event_id
from homeserver.protocol.identifiers import InvalidIdentifier, UserID
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.protocol.signing import SignatureError, sign_event, verify_event_signature
from homeserver.services.events.append import append_local_event, check_auth, persist_local_event
from homeserver.services.events.audit_membership import audit_membership_change
from homeserver.services.federation import client
from homeserver.services.federation.keyring import KeyNotFound, get_verify_key
from homeserver.services.federation.membership_serve import (
    checked_pdu,
    invite_state_pdus,
    is_resident,
)
from homeserver.services.federation.remote_membership import F2, remote_error, server_of
from homeserver.services.signing_keys import server_signing_key
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage import state as state_store
from homeserver.storage.accounts import get_account
from homeserver.storage.stream import next_stream_positions

MEMBER = "m.room.member"
CREATE_KEY = ("m.room.create", "")
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


def apply_out_of_band_membership(origin: str, event: Event) -> bool:
    """A leave or ban of one of our users in a room we know only from their invite or knock
    (the inviter revoked the invite, the room refused the knock). We hold none of the room's
    graph, so the event cannot be placed in it: like the invite, it is kept as an outlier and
    moves the user's membership. It must come from the server of its sender and cite the
    invite or knock it ends among its auth events. For the /send pipeline, after check_pdu;
    True when the event was handled here."""
    user = event.state_key or ""
    if (event.type != MEMBER or event.content.get("membership") not in ("leave", "ban")
            or not user.endswith(":" + settings.PALISADE.server_name)
            or _server(event.sender) != origin):
        return False
    current = state_store.membership_of(event.room_id, user)
    if current is None or current[0] not in ("invite", "knock") or is_resident(event.room_id):
        return False
    if CREATE_KEY in state_store.current_state_ids(event.room_id, [CREATE_KEY]):
        return False  # we hold the room's state: the normal ingest path applies
    if current[1] not in event.auth_event_ids:
        return False
    membership = event.content["membership"]
    with transaction.atomic():
        if not event_store.known_event_ids([event.event_id]):
            event_store.persist_event(event, stream_ordering=None, state_group=None,
                                      outlier=True)
        position = next_stream_positions()
        state_store.apply_current_state_delta(event.room_id, {(MEMBER, user): event.event_id},
                                              position, {user: membership})
        notify_after_commit(position, room_ids=[event.room_id], user_ids=[user])
        record(AuditAction.MEMBERSHIP_CHANGED, actor=event.sender,
               actor_type=ActorType.REMOTE_SERVER, target=event.room_id,
               details={"user_id": user, "membership": membership, "origin": origin,
                        "event_id": event.event_id, "out_of_band": True})
    return True


# --------------------------------------------------------------------------- our invites out


def check_invitee_server(sender: str, invitee: str, room_id: str | None) -> None:
    """REQUIREMENTS.md A_25534: no invite to a server the allow/deny lists refuse (raised as
    a policy denial, so the service boundary audits it once)."""
    server = server_of(invitee)
    rule = decide(server)
    if rule is not None:
        raise PolicyDenied(Hook.INVITE, Deny(rule=rule, reason=(
            f"Federation with {server} is not allowed")),
            {"actor": sender, "target": invitee, "room_id": room_id or "", "server": server})


def invite_remote_user(sender: str, room_id: str, invitee: str, content: dict[str, Any]) -> str:
    """Build and authorise the invite, have the invitee's server co-sign it (PUT v2/invite),
    then persist the doubly signed event through the normal local path."""
    server = server_of(invitee)
    rv = room_store.room_version(room_id)
    assert rv is not None
    with transaction.atomic():
        room_store.lock_room(room_id)
        event = append_local_event(room_id=room_id, room_version=rv, sender=sender,
                                   event_type=MEMBER, content=content, state_key=invitee)
        invite_state = invite_state_pdus(room_id)
    body = {"room_version": rv.identifier, "event": event.pdu, "invite_room_state": invite_state}
    try:
        resp = async_to_sync(client.request)(
            "PUT", server, F2 + "invite/" + client.path_of(room_id, event.event_id), content=body)
    except client.FederationError as e:
        raise remote_error([(server, e)], f"invite {invitee}") from None
    signed = async_to_sync(_their_signature)(server, event, resp)
    with transaction.atomic():
        group = room_store.lock_room(room_id)
        _recheck_against_current(signed)
        persist_local_event(signed, group)
        audit_membership_change(signed)
    return signed.event_id


async def _their_signature(server: str, event: Event, resp: Any) -> Event:
    """Our event with the invitee server's signature added; that signature must verify and the
    event must otherwise be the one we sent (same reference hash, so the same event id)."""
    pdu = resp.get("event") if isinstance(resp, dict) else None
    rv = event.room_version
    if not isinstance(pdu, dict) or compute_event_id(pdu, rv) != event.event_id:
        raise MatrixError(502, Errcode.UNKNOWN, f"{server} returned another event")
    theirs = (pdu.get("signatures") or {}).get(server)
    if not isinstance(theirs, dict) or not theirs:
        raise MatrixError(502, Errcode.UNKNOWN, f"{server} did not sign the invite")
    checked = {**event.pdu, "signatures": {**event.pdu["signatures"], server: theirs}}
    for key_id in theirs:
        try:
            verify_event_signature(checked, rv, server, key_id,
                                   await get_verify_key(server, key_id))
            return Event(event.event_id, rv, checked)
        except (KeyNotFound, SignatureError):
            continue
    raise MatrixError(502, Errcode.UNKNOWN, f"{server}'s signature on the invite does not verify")


def _recheck_against_current(event: Event) -> None:
    """The room may have moved on while the invitee's server answered: the invite must still
    be allowed by the current state."""
    state = state_store.current_state_ids(event.room_id)
    keys = {CREATE_KEY, ("m.room.power_levels", ""), ("m.room.join_rules", ""),
            (MEMBER, event.sender), (MEMBER, event.state_key or "")}
    ids = {k: state[k] for k in keys if k in state}
    found = event_store.get_events(ids.values())
    check_auth(event, {k: found[v] for k, v in ids.items() if v in found})
