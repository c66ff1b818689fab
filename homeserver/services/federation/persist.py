"""Persisting events that came from other servers: auth checks against the event's own auth
events, the state before it and the current state, then the room graph, state groups, current
state, stream position and the /sync wake-up.

Spec: server-server API "Checks performed on receipt of a PDU" steps 4-6 ("Rejection", "Soft
failure"), rooms/v*.md "Authorization rules" and "State resolution" (the state before an event
with several prev_events is the resolution of their states; the room's current state is the
resolution of the states of its forward extremities).

Callers did steps 1-3 (services/federation/pdu_checks.py) and fetched what was missing
(services/federation_ingest/missing.py). Everything here is synchronous and transactional.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from django.db import transaction

from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.auth_rules import (
    AuthError,
    auth_types_for_event,
    check_auth_events,
    check_auth_rules,
)
from homeserver.protocol.events import Event
from homeserver.protocol.power_levels import named_level, user_power_level
from homeserver.protocol.room_versions import RoomVersion
from homeserver.protocol.state_res_v2 import resolve_state
from homeserver.services.push.evaluate import record_push_actions
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage import state as state_store
from homeserver.storage.stream import next_stream_positions

logger = logging.getLogger(__name__)

StateKey = tuple[str, str]
StateMap = dict[StateKey, str]
CREATE_KEY = ("m.room.create", "")
POWER_KEY = ("m.room.power_levels", "")

ACCEPTED = "accepted"
REJECTED = "rejected"
SOFT_FAILED = "soft_failed"
WITHHELD = "withheld"


class MissingEvents(Exception):
    """The event refers to prev or auth events we do not hold (callers fetch them first)."""

    def __init__(self, event_ids: Iterable[str]) -> None:
        self.event_ids = sorted(set(event_ids))
        super().__init__(f"missing events {self.event_ids}")


# --------------------------------------------------------------------------- reading state


def _get_event(event_id: str) -> Event | None:
    return event_store.get_event(event_id)


def _state_groups(event_ids: Iterable[str]) -> dict[str, int]:
    """The state group after each event we hold with one (one query for all of them)."""
    recs = event_store.get_event_records(event_ids)
    return {eid: r.state_group for eid, r in recs.items() if r.state_group is not None}


def resolve(rv: RoomVersion, state_sets: list[StateMap]) -> StateMap:
    if len(state_sets) == 1:
        return dict(state_sets[0])
    cache: dict[str, Event | None] = {}

    def get(eid: str) -> Event | None:
        if eid not in cache:
            cache[eid] = _get_event(eid)
        return cache[eid]

    return resolve_state(rv, state_sets, get)


def state_before_event(event: Event, prev_groups: dict[str, int] | None = None) -> StateMap:
    """The resolved state after each of the event's prev_events (`prev_groups`: their state
    groups, when the caller read them already). Raises MissingEvents when a prev event (or its
    state) is unknown."""
    groups = _state_groups(event.prev_event_ids) if prev_groups is None else prev_groups
    missing = [p for p in event.prev_event_ids if p not in groups]
    sets = [dict(state_store.state_for_group(groups[p])) for p in event.prev_event_ids
            if p in groups]
    if missing:
        raise MissingEvents(missing)
    if not sets:
        return {}
    return resolve(event.room_version, sets)


# --------------------------------------------------------------------------- auth steps


def _auth_map_from_state(event: Event, state: StateMap) -> dict[StateKey, Event]:
    keys = set(auth_types_for_event(event.room_version, event.type, event.sender,
                                    event.state_key, event.content)) | {CREATE_KEY}
    ids = {k: state[k] for k in keys if k in state}
    found = event_store.get_events(ids.values())
    return {k: found[eid] for k, eid in ids.items() if eid in found}


def check_against_auth_events(event: Event) -> str | None:
    """Step 4: the reason the event fails its own auth events, or None."""
    auth = event_store.get_events(event.auth_event_ids)
    missing = set(event.auth_event_ids) - set(auth)
    if missing:
        raise MissingEvents(missing)
    create = None
    if event.room_version.room_id_from_create_event and event.type != "m.room.create":
        create = event_store.get_event("$" + event.room_id[1:])
        if create is None:
            raise MissingEvents(["$" + event.room_id[1:]])
    try:
        by_key = check_auth_events(event, auth.values(), create_event=create)
        check_auth_rules(event, by_key)
    except AuthError as e:
        return f"auth events: {e.reason}"
    return None


def _current_auth_state(event: Event) -> StateMap:
    """The part of the room's current state the auth rules look at for `event`."""
    keys = set(auth_types_for_event(event.room_version, event.type, event.sender,
                                    event.state_key, event.content)) | {CREATE_KEY}
    return state_store.current_state_ids(event.room_id, keys)


def check_against_state(event: Event, state: StateMap) -> str | None:
    """Steps 5 and 6: the reason the event fails the auth rules on `state`, or None."""
    try:
        check_auth_rules(event, _auth_map_from_state(event, state))
    except AuthError as e:
        return str(e.reason)
    return None


# --------------------------------------------------------------------------- writing


def _group_for(room_id: str, state: StateMap, base_groups: Iterable[int]) -> int:
    """A state group holding `state`, stored as a delta on one of `base_groups` (the prev
    events' groups) when that is exact, else as a full snapshot."""
    for group in base_groups:
        base = state_store.state_for_group(group)
        if set(base) <= set(state):
            delta = {k: v for k, v in state.items() if base.get(k) != v}
            if not delta:  # state groups never change: share it
                return group
            return state_store.create_state_group(room_id, group, delta)
    return state_store.create_state_group(room_id, None, state)


def _update_current_state(room_id: str, rv: RoomVersion, event: Event, state_after: StateMap,
                          position: int, current_group: int | None, *, linear: bool,
                          group_after: int) -> list[str]:
    """Recompute the room's current state from its forward extremities; returns the members
    whose membership changed. `linear`: the event was built on exactly the room's forward
    extremities, so the current state is the state after it (the common case, one write)."""
    if linear:
        if not event.is_state:
            return []
        membership = ({event.state_key or "": event.content.get("membership", "")}
                      if event.type == "m.room.member" else {})
        state_store.apply_current_state_delta(room_id, {event.state_tuple: event.event_id},
                                              position, membership)
        room_store.set_current_state_group(room_id, group_after)
        return list(membership)
    extremities = event_store.forward_extremities(room_id)
    if extremities == [event.event_id]:
        new = state_after
    else:
        sets = [dict(state_store.state_for_group(g))
                for g in _state_groups(extremities).values()]
        new = resolve(rv, sets) if sets else state_after
    old = state_store.current_state_ids(room_id)
    delta = {k: v for k, v in new.items() if old.get(k) != v}
    removed = [k for k in old if k not in new]
    if not delta and not removed:
        return []
    members = {k[1] for k in list(delta) + removed if k[0] == "m.room.member"}
    member_events = event_store.get_events(delta[k] for k in delta if k[0] == "m.room.member")
    memberships = {k[1]: member_events[v].content.get("membership", "")
                   for k, v in delta.items() if k[0] == "m.room.member" and v in member_events}
    if removed:
        state_store.remove_current_state(room_id, removed)
    state_store.apply_current_state_delta(room_id, delta, position, memberships)
    if removed or current_group is None:
        group = state_store.create_state_group(room_id, None, new)
    else:
        group = state_store.create_state_group(room_id, current_group, delta)
    room_store.set_current_state_group(room_id, group)
    return sorted(members)


def _redaction_allowed(event: Event, state: StateMap) -> bool:
    """Spec: rooms v3+ "Redactions": a redaction takes effect when its sender's server is the
    redacted event's sender's server, or the sender has the `redact` power level."""
    target = event_store.get_event(event.redacts) if event.redacts else None
    if target is None or target.room_id != event.room_id:
        return False
    if target.sender.split(":", 1)[1] == event.sender.split(":", 1)[1]:
        return True
    auth = _auth_map_from_state(event, state)
    pl = auth.get(POWER_KEY)
    level = user_power_level(event.sender, pl, auth.get(CREATE_KEY), event.room_version)
    return level >= named_level(pl.content if pl else None, "redact")


def persist_remote_event(event: Event, *, state_before: StateMap | None = None,
                         withheld_reason: str | None = None,
                         backfill_position: int | None = None) -> str:
    """Steps 4-6 and persistence of one event from another server, in its own transaction.

    Returns ACCEPTED, REJECTED (kept for the graph, never in state or timeline), SOFT_FAILED
    (valid but not allowed by the current state: not in the timeline, not an extremity) or
    WITHHELD (accepted into state and graph, kept from clients: `withheld_reason`).
    Backfilled events (history older than what we hold) come with their `backfill_position`,
    negative (storage/backfill.py), so /messages shows them in place and /sync never does; the
    soft-failure check (against the room's current state) does not apply to history."""
    backfilled = backfill_position is not None
    with transaction.atomic():
        room_id = event.room_id
        current_group = room_store.lock_room(room_id)
        status = event_store.event_status(event.event_id)
        if status is not None and not status[0]:
            return _status_name(status)
        prev_groups = _state_groups(event.prev_event_ids)
        bases = [prev_groups[p] for p in event.prev_event_ids if p in prev_groups]
        if state_before is None:
            state_before = state_before_event(event, prev_groups)
        reason = check_against_auth_events(event)
        if reason is None:
            r = check_against_state(event, state_before)
            reason = None if r is None else f"state before: {r}"
        if reason is not None:
            logger.info("rejecting %s from %s: %s", event.event_id, event.sender, reason)
            rejected = dataclasses.replace(event, rejected_reason=reason)
            group = _group_for(room_id, state_before, bases)
            _store(rejected, status, stream_ordering=None, state_group=group,
                   replaces=None, withheld=None)
            return REJECTED
        soft = None
        if not backfilled and current_group is not None:
            soft = check_against_state(event, _current_auth_state(event))
        state_after = dict(state_before)
        if event.is_state:
            state_after[event.state_tuple] = event.event_id
        group = _group_for(room_id, state_after, bases)
        replaces = state_before.get(event.state_tuple) if event.is_state else None
        if soft is not None:
            # Spec "Soft failure": in the graph (others may build on it), but it neither becomes
            # a forward extremity nor retires its prev events as ones, is not sent to clients
            # and does not change the current state.
            logger.info("soft-failing %s from %s: %s", event.event_id, event.sender, soft)
            _store(event, status, stream_ordering=None, state_group=group, replaces=replaces,
                   withheld=SOFT_FAILED)
            return SOFT_FAILED
        position = backfill_position if backfill_position is not None else next_stream_positions()
        visible = withheld_reason is None
        _store(event, status, stream_ordering=position if visible else None, state_group=group,
               replaces=replaces, withheld=withheld_reason)
        is_new_tip = not event_store.has_successor(event.event_id)
        linear = set(event_store.forward_extremities(room_id)) == set(event.prev_event_ids)
        event_store.replace_forward_extremities(
            room_id, event.prev_event_ids, event.event_id if is_new_tip else None)
        if event.type == "m.room.redaction" and _redaction_allowed(event, state_before):
            event_store.mark_redacted(event.redacts or "", event.event_id)
        # An event older than events we already hold (backfill) does not move the room on.
        members = _update_current_state(
            room_id, event.room_version, event, state_after, position, current_group,
            linear=linear and current_group is not None, group_after=group) if is_new_tip else []
        if backfilled:
            return ACCEPTED if visible else WITHHELD
        if visible:
            record_push_actions(event, position)
        notify_after_commit(position, room_ids=[room_id], user_ids=members)
        return ACCEPTED if visible else WITHHELD


def _status_name(status: tuple[bool, str | None, str | None]) -> str:
    _outlier, rejection, withheld = status
    if rejection:
        return REJECTED
    if withheld == SOFT_FAILED:
        return SOFT_FAILED
    return WITHHELD if withheld else ACCEPTED


def _store(event: Event, status: tuple | None, *, stream_ordering: int | None,
           state_group: int | None, replaces: str | None, withheld: str | None) -> None:
    if status is not None:  # known as an outlier: it now joins the timeline
        event_store.promote_outlier(event, stream_ordering=stream_ordering,
                                    state_group=state_group, replaces_state=replaces,
                                    withheld_reason=withheld)
    else:
        event_store.persist_event(event, stream_ordering=stream_ordering,
                                  state_group=state_group, replaces_state=replaces,
                                  withheld_reason=withheld)


def persist_outliers(events: Iterable[Event]) -> None:
    """Store events we need for auth chains and state but that are not (yet) in our timeline.
    Each is checked against its own auth events (step 4) where we hold them; an event failing
    that is stored rejected. Events are processed in auth-chain order (auth events first)."""
    todo = {e.event_id: e for e in events}
    known = event_store.known_event_ids(todo)
    pending = {eid: e for eid, e in todo.items() if eid not in known}
    with transaction.atomic():
        while pending:
            ready = [e for e in pending.values()
                     if not any(a in pending for a in e.auth_event_ids)]
            if not ready:  # an auth cycle cannot be valid: reject what is left
                ready = list(pending.values())
            for event in sorted(ready, key=lambda e: e.depth):
                try:
                    reason = check_against_auth_events(event)
                except MissingEvents as e:
                    reason = f"missing auth events {e.event_ids}"
                stored = dataclasses.replace(event, rejected_reason=reason)
                event_store.persist_event(stored, stream_ordering=None, state_group=None,
                                          outlier=True)
                del pending[event.event_id]


def create_room_from_join(room_version: RoomVersion, join_event: Event, state: list[Event],
                          auth_chain: list[Event]) -> str:
    """A room we join through another server (send_join answer): the room row, its state and
    auth chain as outliers, then the join on top of that state as the room's first timeline
    event. Returns the join's status (ACCEPTED unless the resident server sent bad state)."""
    room_id = join_event.room_id
    create = next((e for e in state if (e.type, e.state_key) == CREATE_KEY), None)
    if create is None:
        raise ValueError("the room state has no m.room.create event")
    created = False
    try:
        with transaction.atomic():
            if room_store.room_version(room_id) is None:
                room_store.insert_room(room_id, room_version.identifier, create.sender,
                                       create.origin_server_ts)
                created = True
            persist_outliers(list(auth_chain) + list(state))
            state_before = {(e.type, e.state_key or ""): e.event_id for e in state
                            if e.is_state and e.event_id != join_event.event_id}
            return persist_remote_event(join_event, state_before=state_before)
    except BaseException:
        if created:
            room_store.forget_room_version(room_id)
        raise
