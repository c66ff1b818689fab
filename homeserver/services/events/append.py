"""The single path by which this server creates an event in a room it hosts.

`append_local_event` must run inside a transaction that already holds the room lock
(storage.rooms.lock_room). It builds the PDU on the room's forward extremities, authorises it
against the current state (spec: server-server API "Checks performed on receipt of a PDU",
step 6 is what a local event must pass too), persists it with its state group and stream
position, moves the extremities and the current state, and schedules the sync wake-up.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from homeserver.effects.federation_outbox import enqueue_pdu
from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.auth_rules import AuthError, auth_types_for_event, check_auth_rules
from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.event_builder import MAX_PDU_SIZE, build_event
from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import RoomVersion
from homeserver.services.push.evaluate import plan_push_actions, record_push_actions
from homeserver.services.signing_keys import server_signing_key
from homeserver.storage import events as event_store
from homeserver.storage import federation_outbox as outbox_store
from homeserver.storage import rooms as room_store
from homeserver.storage import state as state_store
from homeserver.storage.stream import next_stream_positions

CREATE_KEY = ("m.room.create", "")
# Spec: server-server API: a server SHOULD NOT reference more than ~20 prev_events; we use 10.
MAX_PREV_EVENTS = 10


def now_ms() -> int:
    return int(time.time() * 1000)


def append_local_event(
    *,
    room_id: str | None,
    room_version: RoomVersion,
    sender: str,
    event_type: str,
    content: dict[str, Any],
    state_key: str | None = None,
    redacts: str | None = None,
) -> Event:
    """Build, authorise, persist. `room_id=None` only for a v12 m.room.create."""
    if room_id is None:
        event = _build(
            room_version,
            None,
            sender,
            event_type,
            content,
            state_key,
            redacts,
            prev=[],
            depth=1,
            auth_ids=[],
        )
        check_auth(event, {})
        return event
    prev_depths = event_store.forward_extremities_with_depth(room_id)
    prev = sorted(prev_depths, key=lambda e: -prev_depths[e])[:MAX_PREV_EVENTS]
    depth = max((prev_depths[e] for e in prev), default=0) + 1
    keys = auth_types_for_event(room_version, event_type, sender, state_key, content)
    wanted = set(keys) | {CREATE_KEY}
    current = state_store.current_state_ids(room_id, wanted)
    auth_map_ids = {k: current[k] for k in wanted if k in current}
    auth_events = event_store.get_events(auth_map_ids.values())
    auth_map = {k: auth_events[eid] for k, eid in auth_map_ids.items()}
    auth_ids = [current[k] for k in keys if k in current]
    event = _build(
        room_version,
        room_id,
        sender,
        event_type,
        content,
        state_key,
        redacts,
        prev=prev,
        depth=depth,
        auth_ids=auth_ids,
    )
    check_auth(event, auth_map)
    return event


def check_auth(event: Event, auth_map: dict) -> None:
    try:
        check_auth_rules(event, auth_map)
    except AuthError as e:
        raise MatrixError(403, Errcode.FORBIDDEN, str(e.reason)) from None


def _build(
    room_version: RoomVersion,
    room_id: str | None,
    sender: str,
    event_type: str,
    content: dict[str, Any],
    state_key: str | None,
    redacts: str | None,
    *,
    prev: list[str],
    depth: int,
    auth_ids: list[str],
) -> Event:
    server_name = settings.PALISADE.server_name
    v1_id = None
    if room_version.has_event_id_field:
        import secrets

        v1_id = f"${secrets.token_urlsafe(18)}:{server_name}"
    event = build_event(
        room_version=room_version,
        room_id=room_id,
        sender=sender,
        event_type=event_type,
        content=content,
        state_key=state_key,
        prev_events=prev,
        auth_events=auth_ids,
        depth=depth,
        origin_server_ts=now_ms(),
        server_name=server_name,
        signing_key=server_signing_key(),
        redacts=redacts,
        v1_event_id=v1_id,
    )
    if len(encode_canonical_json(event.pdu)) > MAX_PDU_SIZE:
        raise MatrixError(413, Errcode.TOO_LARGE, "Event too large (over 65536 bytes)")
    return event


def persist_local_event(event: Event, prev_group: int | None) -> int | None:
    """Persist an authorised local event on top of the room's current state group
    `prev_group` (from lock_room); returns the room's state group after it."""
    room_id = event.room_id
    delta: dict[tuple[str, str], str] = {}
    memberships: dict[str, str] = {}
    group = prev_group
    replaces = None
    if event.is_state:
        replaces = state_store.current_state_ids(room_id, [event.state_tuple]).get(
            event.state_tuple
        )
        delta = {event.state_tuple: event.event_id}
        group = state_store.create_state_group(room_id, prev_group, delta)
        room_store.set_current_state_group(room_id, group)
        if event.type == "m.room.member":
            memberships[event.state_key or ""] = event.content.get("membership", "")
    # Writes that need no stream position come first: the position's row lock is held until
    # COMMIT and serialises every send on the server, so it is taken as late as possible.
    if event.type == "m.room.redaction" and event.redacts:
        event_store.mark_redacted(event.redacts, event.event_id)
    event_store.replace_forward_extremities(room_id, event.prev_event_ids, event.event_id)
    _enqueue_for_federation(event)  # before the position: see below
    # Push rules read the current state, which only a state event changes: evaluate the others
    # before the position too, and store the result under it.
    write_push = None if event.is_state else plan_push_actions(event)
    event_store.persist_event_links(event)  # edges, auth edges, relation: no position either
    position = _stream_position()
    event_store.persist_event(
        event, stream_ordering=position, state_group=group, replaces_state=replaces, links=False
    )
    if delta:
        state_store.apply_current_state_delta(room_id, delta, position, memberships)
    # Spec "Push Notifications" server behaviour: counts change in the same transaction.
    if write_push is not None:
        write_push(position)
    else:
        record_push_actions(event, position)
    users = list(memberships) if memberships else []
    notify_after_commit(position, room_ids=[room_id], user_ids=users)
    return group


def _enqueue_for_federation(event: Event) -> None:
    """Queue the event for every other server with a joined member once the event applies, and
    for a remote member's server when they leave, are kicked or banned, so it learns they are
    out (spec: server-server API "Transactions", "PDUs"). Runs before the current state moves
    (and before the stream position's lock is taken), so the joined servers are read from the
    state before the event, plus the target's server of a join/leave/ban: the same set.
    Invites of remote users go through /invite (spec "Inviting to a room"), not from here."""
    destinations = outbox_store.servers_in_room(event.room_id)
    if event.type == "m.room.member" and event.content.get("membership") in (
            "join", "leave", "ban"):
        target = event.state_key or ""
        if ":" in target:
            destinations.add(target.split(":", 1)[1])
    destinations.discard(settings.PALISADE.server_name)
    if destinations:
        enqueue_pdu(event, destinations)


def _stream_position() -> int:
    return next_stream_positions()
