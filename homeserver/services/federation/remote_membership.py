"""Our users' membership in rooms held by other servers: joining through a resident server,
rejecting a remote invite, inviting a user of another server into one of our rooms.

Spec: server-server API "Joining Rooms" (make_join, send_join v2), "Leaving Rooms (Rejecting
Invites)" (make_leave, send_leave v2), "Inviting to a room" (invite v2), "Querying for
information" (query/directory); client-server API "Room membership". Federation requests are
made outside any database transaction; each write is one short transaction afterwards.
REQUIREMENTS.md A_25534: client.request refuses servers the allow-list does not permit.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import IntegrityError, transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from compliance.federation_access import decide
from compliance.hooks import Deny, Hook, PolicyDenied, records_policy_denials
from compliance.hooks import run as run_policy
from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.auth_rules import AuthError, check_auth_events, check_auth_rules
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.events import Event
from homeserver.protocol.hashing import compute_event_id
from homeserver.protocol.identifiers import InvalidIdentifier, RoomAlias, UserID
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.protocol.signing import sign_event
from homeserver.services.events.append import (
    now_ms,
)
from homeserver.services.events.audit_membership import audit_membership_change
from homeserver.services.federation import client
from homeserver.services.federation.membership_serve import (
    is_resident,
    servers_in_room,
)
from homeserver.services.federation.pdu_checks import PduRejected, check_pdu
from homeserver.services.federation.persist import ACCEPTED, create_room_from_join
from homeserver.services.signing_keys import server_signing_key
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage import state as state_store
from homeserver.storage.stream import next_stream_positions

logger = logging.getLogger(__name__)

MEMBER = "m.room.member"
CREATE_KEY = ("m.room.create", "")
F1 = "/_matrix/federation/v1/"
F2 = "/_matrix/federation/v2/"


def _ours() -> str:
    return settings.PALISADE.server_name


def server_of(user_or_room: str) -> str:
    return user_or_room.split(":", 1)[1]


# --------------------------------------------------------------------------- deciding


def needs_remote_join(room_id: str) -> bool:
    """A join goes through another server unless one of our users is in the room, or the room
    is ours alone (we hold its state and no other server has members in it)."""
    if is_resident(room_id):
        return False
    if room_store.room_version(room_id) is None:
        return True
    has_state = CREATE_KEY in state_store.current_state_ids(room_id, [CREATE_KEY])
    return not has_state or bool(servers_in_room(room_id) - {_ours()})


def is_remote_alias(alias: str) -> bool:
    try:
        return str(RoomAlias.parse(alias).server_name) != _ours()
    except (InvalidIdentifier, TypeError):
        raise MatrixError(400, Errcode.INVALID_PARAM, f"Invalid room alias {alias!r}") from None


def resolve_remote_alias(alias: str) -> tuple[str, list[str]]:
    """Spec: server-server "Querying for information" GET /query/directory."""
    server = server_of(alias)
    try:
        resp = async_to_sync(client.request)("GET", server, F1 + "query/directory",
                                             query={"room_alias": alias})
    except client.FederationError as e:
        if e.status == 404:
            raise MatrixError(404, Errcode.NOT_FOUND, f"Room alias {alias} not found") from None
        raise MatrixError(502, Errcode.UNKNOWN, f"Cannot resolve {alias}: {e}") from None
    room_id, servers = resp.get("room_id"), resp.get("servers")
    if not isinstance(room_id, str) or not room_id.startswith("!"):
        raise MatrixError(502, Errcode.UNKNOWN, f"{server} answered without a room id")
    servers = [s for s in servers if isinstance(s, str)] if isinstance(servers, list) else []
    return room_id, [server, *servers]


def _candidates(room_id: str, user_id: str, via: list[str]) -> list[str]:
    """The servers to ask, in order: the client's via/server_name, the inviter's server, the
    servers we know to be in the room, the room id's server (rooms v1-v11)."""
    out: list[str] = list(via)
    member = state_store.membership_of(room_id, user_id)
    if member and member[0] in ("invite", "knock"):
        ev = event_store.get_event(member[1])
        if ev is not None:
            out.append(server_of(ev.sender))
            # The senders of the room's stripped state were in the room (knocks: ours is not).
            unsigned = ev.pdu.get("unsigned", {})
            stripped = unsigned.get("invite_room_state") or unsigned.get("knock_room_state")
            out += [server_of(e["sender"]) for e in stripped if isinstance(stripped, list)
                    and isinstance(e, dict) and ":" in str(e.get("sender", ""))]
    if room_store.room_version(room_id) is not None:
        out += sorted(servers_in_room(room_id))
    if ":" in room_id:
        out.append(server_of(room_id))
    seen: list[str] = []
    for s in out:
        if s and s != _ours() and s not in seen:
            seen.append(s)
    return seen


def _refused_by_allow_list(servers: list[str], ctx: dict[str, Any], hook: Hook) -> None:
    """Every candidate is refused by the federation allow/deny lists: one audited denial."""
    rules = [r for s in servers if (r := decide(s)) is not None]
    if servers and len(rules) == len(servers):
        raise PolicyDenied(hook, Deny(rule=rules[0],
                                      reason=f"Federation with {servers[0]} is not allowed"),
                           ctx)


# --------------------------------------------------------------------------- building


def event_from_template(template: Any, rv: RoomVersion, room_id: str, user_id: str,
                        membership: str, extra: dict[str, Any]) -> Event:
    """Our signed event from a make_* template (spec "Joining Rooms": the joining server fills
    in origin, origin_server_ts and content, then hashes and signs)."""
    if (not isinstance(template, dict) or template.get("type") != MEMBER
            or template.get("state_key") != user_id or template.get("sender") != user_id
            or template.get("room_id") != room_id
            or not isinstance(template.get("content"), dict)
            or template["content"].get("membership") != membership):
        raise MatrixError(502, Errcode.UNKNOWN, "The resident server sent an invalid template")
    pdu = {k: v for k, v in template.items()
           if k not in ("signatures", "hashes", "unsigned", "event_id")}
    pdu["content"] = {**template["content"], **extra, "membership": membership}
    pdu["origin_server_ts"] = now_ms()
    if rv.has_event_id_field or rv.redaction < 11:
        pdu["origin"] = _ours()
    else:
        pdu.pop("origin", None)
    if rv.has_event_id_field:
        pdu["event_id"] = f"${secrets.token_urlsafe(18)}:{_ours()}"
    pdu = sign_event(pdu, rv, _ours(), server_signing_key())
    return Event(event_id=compute_event_id(pdu, rv), room_version=rv, pdu=pdu)


async def _make(server: str, room_id: str, user_id: str,
                membership: str) -> tuple[Any, RoomVersion]:
    query = {"ver": list(KNOWN_ROOM_VERSIONS)} if membership != "leave" else None
    resp = await client.request("GET", server,
                                F1 + f"make_{membership}/" + client.path_of(room_id, user_id),
                                query=query)
    version = resp.get("room_version", "1") if isinstance(resp, dict) else None
    rv = KNOWN_ROOM_VERSIONS.get(version) if isinstance(version, str) else None
    if rv is None:
        raise MatrixError(400, Errcode.UNSUPPORTED_ROOM_VERSION,
                          f"Room version {version!r} is not supported")
    return resp.get("event"), rv


def remote_error(errors: list[tuple[str, Exception]], what: str) -> MatrixError:
    """The most telling failure: a refusal a resident server answered with, else 404/502."""
    for server, e in errors:
        if isinstance(e, MatrixError):
            return e
        body = getattr(e, "body", None)
        status = getattr(e, "status", None)
        if status in (400, 403, 404) and isinstance(body, dict) and "errcode" in body:
            return MatrixError(status, body["errcode"],
                               f"{server}: {body.get('error', 'refused')}")
    if not errors:
        return MatrixError(404, Errcode.NOT_FOUND, f"No known servers to {what} through")
    return MatrixError(502, Errcode.UNKNOWN,
                       f"Cannot {what}: " + "; ".join(f"{s}: {e}" for s, e in errors))


# --------------------------------------------------------------------------- join


def accepted_state(events: dict[str, Event], create: Event) -> set[str]:
    """Ids of the events that pass the auth rules against their own auth events, which must
    be among `events` and accepted themselves (spec: "Checks performed on receipt of a PDU"
    step 4, applied to a send_join answer before any of it is stored)."""
    ok: set[str] = set()
    bad: set[str] = set()
    pending = sorted(events.values(), key=lambda e: e.depth)
    v12 = create.room_version.room_id_from_create_event
    while pending:
        rest, progressed = [], False
        for ev in pending:
            auth_ids = ev.auth_event_ids
            if any(a in bad or a not in events for a in auth_ids):
                bad.add(ev.event_id)
                progressed = True
                continue
            if any(a not in ok for a in auth_ids):
                rest.append(ev)
                continue
            progressed = True
            try:
                by_key = check_auth_events(
                    ev, [events[a] for a in auth_ids],
                    create_event=create if v12 and ev.type != "m.room.create" else None)
                check_auth_rules(ev, by_key)
                ok.add(ev.event_id)
            except AuthError as e:
                logger.info("send_join state: dropping %s: %s", ev.event_id, e.reason)
                bad.add(ev.event_id)
        if not progressed:
            break
        pending = rest
    return ok


async def _checked_all(pdus: Any, rv: RoomVersion) -> list[Event]:
    out = []
    for pdu in pdus if isinstance(pdus, list) else []:
        try:
            out.append(await check_pdu(pdu, rv))
        except PduRejected as e:
            logger.info("send_join answer: dropping an event: %s", e)
    return out


async def _send_join(server: str, room_id: str, join: Event
                     ) -> tuple[Event, list[Event], list[Event]]:
    rv = join.room_version
    resp = await client.request("PUT", server, F2 + "send_join/" + client.path_of(
        room_id, join.event_id), content=join.pdu)
    if not isinstance(resp, dict):
        raise MatrixError(502, Errcode.UNKNOWN, f"{server} sent an invalid send_join answer")
    if isinstance(resp.get("event"), dict):
        # Restricted rooms: the resident server's co-signed copy of our join.
        signed = await check_pdu(resp["event"], rv)
        if signed.event_id != join.event_id:
            raise MatrixError(502, Errcode.UNKNOWN, f"{server} returned another join event")
        join = signed
    state = await _checked_all(resp.get("state"), rv)
    chain = await _checked_all(resp.get("auth_chain"), rv)
    return join, state, chain


def _verify_join(join: Event, state: list[Event], chain: list[Event]
                 ) -> tuple[list[Event], list[Event]]:
    rv = join.room_version
    events = {e.event_id: e for e in [*chain, *state]}
    create = next((e for e in state if (e.type, e.state_key) == CREATE_KEY), None)
    if create is None:
        raise MatrixError(502, Errcode.UNKNOWN, "The room state has no m.room.create event")
    if create.content.get("room_version", "1") != rv.identifier:
        raise MatrixError(502, Errcode.UNKNOWN, "The room's create event names another version")
    ok = accepted_state(events, create)
    if create.event_id not in ok:
        raise MatrixError(502, Errcode.UNKNOWN, "The room's create event does not verify")
    state = [e for e in state if e.event_id in ok and e.is_state and e.room_id == join.room_id]
    by_key = {(e.type, e.state_key or ""): e for e in state}
    try:
        check_auth_rules(join, by_key)
    except AuthError as e:
        raise MatrixError(403, Errcode.FORBIDDEN, f"The join is not allowed: {e.reason}") from None
    return state, [e for e in chain if e.event_id in ok]


@records_policy_denials
def join_remote_room(user_id: str, room_id: str, via: list[str], extra: dict[str, Any]) -> str:
    """make_join + send_join through the first server that works, then store the room."""
    servers = _candidates(room_id, user_id, via)
    ctx = {"actor": user_id, "target": room_id, "room_id": room_id, "servers": servers}
    _refused_by_allow_list(servers, ctx, Hook.JOIN_REMOTE_ROOM)
    errors: list[tuple[str, Exception]] = []
    for server in servers:
        if decide(server) is not None:
            continue
        try:
            template, rv = async_to_sync(_make)(server, room_id, user_id, "join")
            join = event_from_template(template, rv, room_id, user_id, "join", extra)
            join, state, chain = async_to_sync(_send_join)(server, room_id, join)
        except (client.FederationError, MatrixError) as e:
            logger.info("join %s via %s failed: %s", room_id, server, e)
            errors.append((server, e))
            if isinstance(e, MatrixError) and e.errcode == Errcode.UNSUPPORTED_ROOM_VERSION:
                break
            continue
        state, chain = _verify_join(join, state, chain)
        _admit(user_id, room_id, server, join, state, chain)
        return room_id
    raise remote_error(errors, "join the room")


def _admit(user_id: str, room_id: str, server: str, join: Event, state: list[Event],
           chain: list[Event]) -> None:
    try:
        _check_join_policy(user_id, room_id, server, state)
    except PolicyDenied:
        # We are in the room on the other side already: leave again (best effort).
        try:
            _remote_leave(user_id, room_id, [server], {})
        except (client.FederationError, MatrixError) as e:
            logger.warning("leaving %s after a policy refusal failed: %s", room_id, e)
        raise
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                _store_join(room_id, join, state, chain)
            return
        except IntegrityError:
            # Another of our users joined the same room at the same moment and created its
            # rows first: store ours on top of them.
            if attempt == 2:
                raise


def _store_join(room_id: str, join: Event, state: list[Event], chain: list[Event]) -> None:
    if room_store.room_version(room_id) is not None and not state_store.current_state_ids(
            room_id, [CREATE_KEY]):
        # The room was known only from an invite: its stub rows give way to the real state.
        stub = state_store.current_state_ids(room_id)
        state_store.remove_current_state(room_id, list(stub))
    status = create_room_from_join(join.room_version, join, state, chain)
    if status != ACCEPTED:
        raise MatrixError(502, Errcode.UNKNOWN, f"The join was {status} on our side")
    audit_membership_change(join)


@records_policy_denials
def _check_join_policy(user_id: str, room_id: str, server: str, state: list[Event]) -> None:
    """Hook.JOIN_REMOTE_ROOM before anything is stored (E2EE-only, room rules)."""
    by_key = {(e.type, e.state_key): e for e in state}
    jr = by_key.get(("m.room.join_rules", ""))
    run_policy(Hook.JOIN_REMOTE_ROOM, {
        "actor": user_id, "target": room_id, "room_id": room_id, "server": server,
        "join_rule": jr.content.get("join_rule") if jr else None,
        "encrypted": ("m.room.encryption", "") in by_key,
    }, value=[e.pdu for e in state])


# --------------------------------------------------------------------------- knock


@records_policy_denials
def knock_remote_room(user_id: str, room_id: str, via: list[str], extra: dict[str, Any]) -> str:
    """Spec: server-server API "Knocking upon a room" (make_knock, send_knock). The knock and
    the room's stripped state are kept like a remote invite (services/federation/invites.py):
    the room row, the knock as an outlier, the user's current-state membership row."""
    from homeserver.services.federation.invites import stripped_invite_state

    servers = _candidates(room_id, user_id, via)
    ctx = {"actor": user_id, "target": room_id, "room_id": room_id, "servers": servers}
    _refused_by_allow_list(servers, ctx, Hook.JOIN_REMOTE_ROOM)
    errors: list[tuple[str, Exception]] = []
    for server in servers:
        if decide(server) is not None:
            continue
        try:
            template, rv = async_to_sync(_make)(server, room_id, user_id, "knock")
            knock = event_from_template(template, rv, room_id, user_id, "knock", extra)
            resp = async_to_sync(client.request)("PUT", server, F1 + "send_knock/" +
                                                 client.path_of(room_id, knock.event_id),
                                                 content=knock.pdu)
            stripped = stripped_invite_state(
                resp.get("knock_room_state") if isinstance(resp, dict) else None, room_id)
        except (client.FederationError, MatrixError) as e:
            logger.info("knock on %s via %s failed: %s", room_id, server, e)
            errors.append((server, e))
            continue
        kept = Event(knock.event_id, rv, {**knock.pdu, "unsigned": {"knock_room_state": stripped}})
        with transaction.atomic():
            if room_store.room_version(room_id) is None:
                room_store.insert_room(room_id, rv.identifier, user_id, knock.origin_server_ts)
            if not event_store.known_event_ids([kept.event_id]):
                event_store.persist_event(kept, stream_ordering=None, state_group=None,
                                          outlier=True)
            position = next_stream_positions()
            state_store.apply_current_state_delta(room_id, {(MEMBER, user_id): kept.event_id},
                                                  position, {user_id: "knock"})
            notify_after_commit(position, room_ids=[room_id], user_ids=[user_id])
            audit_membership_change(kept)
        return room_id
    raise remote_error(errors, "knock on the room")


# --------------------------------------------------------------------------- leave / reject


def _remote_leave(user_id: str, room_id: str, servers: list[str], extra: dict[str, Any]
                  ) -> Event:
    errors: list[tuple[str, Exception]] = []
    for server in servers:
        if decide(server) is not None:
            continue
        try:
            template, rv = async_to_sync(_make)(server, room_id, user_id, "leave")
            leave = event_from_template(template, rv, room_id, user_id, "leave", extra)
            async_to_sync(client.request)("PUT", server, F2 + "send_leave/" + client.path_of(
                room_id, leave.event_id), content=leave.pdu)
            return leave
        except (client.FederationError, MatrixError) as e:
            logger.info("leave %s via %s failed: %s", room_id, server, e)
            errors.append((server, e))
    raise remote_error(errors, "leave the room")


def reject_remote_invite(user_id: str, room_id: str, reason: str | None) -> None:
    """Spec "Leaving Rooms (Rejecting Invites)": make_leave/send_leave through the inviting
    server (or the room's). When none answers, the invite is rejected here only, with a leave
    event of our own, so the user is never stuck with it."""
    member = state_store.membership_of(room_id, user_id)
    assert member is not None
    extra = {"reason": reason} if reason is not None else {}
    servers = _candidates(room_id, user_id, [])
    try:
        leave = _remote_leave(user_id, room_id, servers, extra)
        local_only = False
    except MatrixError as e:
        logger.warning("rejecting the invite to %s locally only: %s", room_id, e.error)
        leave = _local_leave(user_id, room_id, member[1], extra)
        local_only = True
    with transaction.atomic():
        if not event_store.known_event_ids([leave.event_id]):
            event_store.persist_event(leave, stream_ordering=None, state_group=None,
                                      outlier=True)
        position = next_stream_positions()
        state_store.apply_current_state_delta(room_id, {(MEMBER, user_id): leave.event_id},
                                              position, {user_id: "leave"})
        notify_after_commit(position, room_ids=[room_id], user_ids=[user_id])
        audit_membership_change(leave)
        if local_only:
            record(AuditAction.MEMBERSHIP_CHANGED, actor=user_id, actor_type=ActorType.USER,
                   target=room_id, details={"user_id": user_id, "membership": "leave",
                                            "event_id": leave.event_id, "local_only": True})


def _local_leave(user_id: str, room_id: str, invite_id: str, extra: dict[str, Any]) -> Event:
    """An out-of-band leave on top of the invite, signed by us (never sent anywhere)."""
    invite = event_store.get_event(invite_id)
    rv = room_store.room_version(room_id)
    assert invite is not None and rv is not None
    template = {"type": MEMBER, "room_id": room_id, "sender": user_id, "state_key": user_id,
                "content": {"membership": "leave"}, "prev_events": [invite_id],
                "auth_events": [invite_id], "depth": invite.depth + 1}
    if rv.has_event_id_field:
        template["prev_events"] = [[invite_id, {}]]
        template["auth_events"] = [[invite_id, {}]]
    return event_from_template(template, rv, room_id, user_id, "leave", extra)


def is_local_user(user_id: str) -> bool:
    try:
        return str(UserID.parse_historical(user_id).server_name) == _ours()
    except (InvalidIdentifier, TypeError):
        return False
