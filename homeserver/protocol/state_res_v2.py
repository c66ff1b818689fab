"""State resolution v2 (room versions 2-11) and its room version 12 variant, v2.1.

Spec: rooms/fragments/v2-state-res.md ("Definitions", "Algorithm", "Rejected events") and
rooms/v12.md "State resolution" (v2.1: the first iterative auth checks start from an empty state
map; the conflicted state subgraph joins the full conflicted set). Graph work (auth chains, auth
difference, conflicted subgraph, Kahn's algorithm) lives in state_res_v2_graph.py.

Code branches on `room_version.state_res` (V2 / V2_1) for the algorithm and on
`room_version.room_id_from_create_event` for where the create event comes from (v12 events do not
cite it; it is the event whose id the room id is), never on version strings.

Decisions where the spec text leaves room (see the tests for worked cases):
- Auth chains are read literally: an event's auth chain does not contain the event, and the
  full auth chain of a state set is the union of its events' auth chains. So an unconflicted
  event that some state set's events cite and another's do not is in the auth difference.
  (Synapse counts the state set's own events into its chain; the results differ only in such
  cases, and step 5 restores the unconflicted entry either way.)
- m.room.create is not a power event: the spec's definition does not list it (Synapse's does).
- Rejected events (`Event.rejected_reason` set) are never admitted into state by the iterative
  auth checks and never used as auth events, nor for a sender's power level in the ordering.
  (The spec would re-admit events rejected against the state at them; here they stay out.)
- Events `get_event` cannot find are left out of the full conflicted set and out of auth chains;
  unconflicted entries pass through untouched (step 5) whether or not they can be fetched.
- If the partially resolved state has no power levels event, the mainline is empty and every
  event's mainline position is the sentinel infinity (ties then fall to origin_server_ts and
  event_id). In v2.1 this is the usual case when the power levels are not in conflict, because
  step 2 no longer starts from the unconflicted state map.
- "Topological ordering based on the DAG formed by auth events" respects reachability through
  events outside the set being sorted, not only direct auth edges inside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from homeserver.protocol.auth_rules import AuthError, auth_types_for_event, check_auth_rules
from homeserver.protocol.events import Event
from homeserver.protocol.power_levels import PowerLevel, user_power_level
from homeserver.protocol.room_versions import RoomVersion, StateRes
from homeserver.protocol.state_res_v2_graph import (
    AuthGraph,
    auth_difference,
    conflicted_subgraph,
    topological_order,
)

__all__ = [
    "AuthGraph",
    "StateKey",
    "auth_difference",
    "conflicted_subgraph",
    "full_conflicted_set",
    "is_power_event",
    "iterative_auth_checks",
    "mainline_order",
    "resolve_state",
    "reverse_topological_power_order",
    "sender_power_level",
    "separate",
]

StateKey = tuple[str, str]

CREATE_KEY: Final = ("m.room.create", "")
POWER_LEVELS_KEY: Final = ("m.room.power_levels", "")
_INFINITY: Final = math.inf


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    get_event: Callable[[str], Event | None],
) -> dict[StateKey, str]:
    """The resolution of `state_sets`, each mapping (type, state_key) to an event id.

    `get_event` fetches any event by id (state events and their auth chains); it is called at
    most once per id. Spec: v2-state-res.md "Algorithm", rooms/v12.md "State resolution".
    """
    if room_version.state_res not in (StateRes.V2, StateRes.V2_1):
        raise ValueError(f"room version {room_version.identifier} does not use state res v2")
    v2_1 = room_version.state_res is StateRes.V2_1

    unconflicted, conflicted = separate(state_sets)
    if not conflicted:
        # Identical state sets have identical auth chains: nothing to resolve.
        return unconflicted

    graph = AuthGraph(get_event)
    full = full_conflicted_set(room_version, state_sets, conflicted, graph)

    # Step 1: the power events of the full conflicted set, plus the events of their auth chains
    # that are in the full conflicted set, in reverse topological power ordering.
    power_events = {event_id for event_id in full if is_power_event(_event(graph, event_id))}
    selected = set(power_events)
    for event_id in power_events:
        selected |= graph.auth_chain(event_id) & full
    sorted_power = reverse_topological_power_order(room_version, selected, graph)

    # Step 2: iterative auth checks from the unconflicted state map (v2), or from an empty state
    # map (v2.1, rooms v12 "State resolution" change 1).
    base: dict[StateKey, str] = {} if v2_1 else dict(unconflicted)
    partial = iterative_auth_checks(room_version, sorted_power, base, graph)

    # Step 3: everything else, by the mainline of the power levels of the partial state.
    remaining = full - selected
    sorted_rest = mainline_order(remaining, partial.get(POWER_LEVELS_KEY), graph)

    # Step 4: iterative auth checks on the partial state.
    resolved = iterative_auth_checks(room_version, sorted_rest, partial, graph)

    # Step 5: the unconflicted state map has the last word.
    resolved.update(unconflicted)
    return resolved


def separate(
    state_sets: Sequence[Mapping[StateKey, str]],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """Spec "Unconflicted state map and conflicted state set": a key present in every state set
    with the same event is unconflicted; otherwise each of its events is conflicted (a key
    missing from some state set is conflicted too)."""
    unconflicted: dict[StateKey, str] = {}
    conflicted: dict[StateKey, set[str]] = {}
    if not state_sets:
        return unconflicted, conflicted
    keys: set[StateKey] = set()
    for state_set in state_sets:
        keys.update(state_set)
    for key in keys:
        values = {state_set.get(key) for state_set in state_sets}
        if len(values) == 1 and None not in values:
            unconflicted[key] = values.pop()  # type: ignore[assignment]
        else:
            values.discard(None)
            conflicted[key] = values  # type: ignore[assignment]
    return unconflicted, conflicted


def full_conflicted_set(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    conflicted: Mapping[StateKey, set[str]],
    graph: AuthGraph,
) -> set[str]:
    """Spec "Full conflicted set": the conflicted state set and the auth difference, and in
    v2.1 the conflicted state subgraph. Only events we can fetch and that are state events
    take part (auth events are always state events; anything else is malformed input)."""
    conflicted_ids: set[str] = set().union(*conflicted.values())
    full = conflicted_ids | auth_difference(state_sets, graph)
    if room_version.state_res is StateRes.V2_1:
        full |= conflicted_subgraph(conflicted_ids, graph)
    return {event_id for event_id in full if _is_state(graph.event(event_id))}


def is_power_event(event: Event) -> bool:
    """Spec "Power events": m.room.power_levels, m.room.join_rules, or an m.room.member leave or
    ban whose sender is not its state_key (a kick, ban or unban).

    The spec's list is followed as written: m.room.create is not a power event.
    """
    if not event.is_state:
        return False
    if event.type in ("m.room.power_levels", "m.room.join_rules"):
        return event.state_key == ""
    if event.type == "m.room.member":
        membership = event.content.get("membership")
        return membership in ("leave", "ban") and event.sender != event.state_key
    return False


def reverse_topological_power_order(
    room_version: RoomVersion, event_ids: Iterable[str], graph: AuthGraph
) -> list[str]:
    """Spec "Reverse topological power ordering": Kahn's algorithm over the auth DAG, earliest
    first, taking among the candidates the one whose sender has the greatest power level (by its
    own auth events), then the smallest origin_server_ts, then the smallest event_id."""

    def power_key(event_id: str) -> tuple[float, int, str]:
        event = _event(graph, event_id)
        level = sender_power_level(room_version, event, graph)
        return (-level, event.origin_server_ts, event_id)

    return topological_order(set(event_ids), graph, power_key)


def sender_power_level(room_version: RoomVersion, event: Event, graph: AuthGraph) -> PowerLevel:
    """The sender's power level "when looking at [the event's] auth_events": its cited
    m.room.power_levels and m.room.create events (rooms v12: the create event the room id names,
    whose creators have infinite power). Rejected auth events are not used."""
    power_levels = None
    create = None
    for auth_id in graph.auth_ids(event.event_id):
        auth_event = graph.event(auth_id)
        if auth_event is None or auth_event.rejected_reason is not None:
            continue
        key = (auth_event.type, auth_event.state_key)
        if key == POWER_LEVELS_KEY:
            power_levels = auth_event
        elif key == CREATE_KEY:
            create = auth_event
    if create is None:
        create = _implicit_create_event(room_version, event, graph)
    return user_power_level(event.sender, power_levels, create, room_version)


def mainline_order(
    event_ids: Iterable[str], power_levels_id: str | None, graph: AuthGraph
) -> list[str]:
    """Spec "Mainline ordering" based on `power_levels_id`: larger mainline position first, then
    smaller origin_server_ts, then smaller event_id.

    The mainline is P0 = `power_levels_id`, P1 its cited power levels event, and so on; an
    event's position is the index i of the first Pi reached by following power levels events
    from its own auth events (not from the event itself), infinity if none is reached.
    """
    mainline: dict[str, int] = {}
    current = power_levels_id
    while current is not None and current not in mainline and graph.event(current) is not None:
        mainline[current] = len(mainline)
        current = _cited_power_levels(current, graph)

    # position_from[p]: the mainline position reached by walking from power levels event p
    # (p itself included). Memoised so that each power levels event is walked once.
    position_from: dict[str, float] = dict(mainline)

    def position(event_id: str) -> float:
        walked: list[str] = []
        found: float = _INFINITY
        current = _cited_power_levels(event_id, graph)
        while current is not None:
            if current in position_from:
                found = position_from[current]
                break
            if current in walked:  # a cycle: no mainline event on it
                break
            walked.append(current)
            current = _cited_power_levels(current, graph)
        for walked_id in walked:
            position_from[walked_id] = found
        return found

    def mainline_key(event_id: str) -> tuple[float, int, str]:
        return (-position(event_id), _event(graph, event_id).origin_server_ts, event_id)

    return sorted(event_ids, key=mainline_key)


def iterative_auth_checks(
    room_version: RoomVersion,
    event_ids: Iterable[str],
    base_state: Mapping[StateKey, str],
    graph: AuthGraph,
) -> dict[StateKey, str]:
    """Spec "Iterative auth checks": apply each state event, in order, to the state if the
    authorisation rules allow it against that state; ignore it otherwise.

    Each key the auth events selection names is read from the state; a key the state lacks is
    taken from the event's own auth_events unless that auth event was rejected. Rooms v12: the
    create event, which v12 events do not cite, is the one the room id names.
    """
    state = dict(base_state)
    for event_id in event_ids:
        event = graph.event(event_id)
        if event is None or not _is_state(event) or event.rejected_reason is not None:
            # Rejected events are not admitted into state (and are never used to authorise).
            continue
        auth_events = _auth_events_for_check(room_version, event, state, graph)
        try:
            check_auth_rules(event, auth_events)
        except AuthError:
            continue
        state[(event.type, event.state_key)] = event_id  # type: ignore[index]
    return state


def _auth_events_for_check(
    room_version: RoomVersion, event: Event, state: Mapping[StateKey, str], graph: AuthGraph
) -> dict[StateKey, Event]:
    cited: dict[StateKey, Event] = {}
    for auth_id in graph.auth_ids(event.event_id):
        auth_event = graph.event(auth_id)
        if auth_event is not None and auth_event.rejected_reason is None and auth_event.is_state:
            cited[(auth_event.type, auth_event.state_key)] = auth_event  # type: ignore[index]

    keys = auth_types_for_event(
        room_version, event.type, event.sender, event.state_key, event.content
    )
    if room_version.room_id_from_create_event:
        keys = [CREATE_KEY, *keys]

    auth_events: dict[StateKey, Event] = {}
    for key in keys:
        chosen = None
        state_id = state.get(key)
        if state_id is not None:
            chosen = graph.event(state_id)
            if chosen is not None and chosen.rejected_reason is not None:
                chosen = None
        if chosen is None:
            chosen = cited.get(key)
        if chosen is None and key == CREATE_KEY:
            chosen = _implicit_create_event(room_version, event, graph)
        if chosen is not None:
            auth_events[key] = chosen
    return auth_events


def _implicit_create_event(
    room_version: RoomVersion, event: Event, graph: AuthGraph
) -> Event | None:
    """Rooms v12: the create event is the one whose id is the room id with the `$` sigil."""
    if not room_version.room_id_from_create_event:
        return None
    room_id = event.room_id
    create = graph.event("$" + room_id[1:])
    if create is None or create.rejected_reason is not None or create.type != CREATE_KEY[0]:
        return None
    return create


def _cited_power_levels(event_id: str, graph: AuthGraph) -> str | None:
    """The m.room.power_levels event among the event's auth events, if any."""
    for auth_id in graph.auth_ids(event_id):
        auth_event = graph.event(auth_id)
        if auth_event is not None and (auth_event.type, auth_event.state_key) == POWER_LEVELS_KEY:
            return auth_id
    return None


def _event(graph: AuthGraph, event_id: str) -> Event:
    event = graph.event(event_id)
    if event is None:  # callers only pass ids the full conflicted set kept (fetchable ones)
        raise LookupError(f"event {event_id} disappeared during state resolution")
    return event


def _is_state(event: Event | None) -> bool:
    return event is not None and event.is_state and isinstance(event.state_key, str)
