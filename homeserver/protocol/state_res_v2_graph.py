"""The auth-event graph as state resolution v2 / v2.1 walks it: auth chains, the auth difference,
the conflicted state subgraph, and the Kahn's-algorithm sort behind the reverse topological power
ordering.

Spec: rooms/fragments/v2-state-res.md "Definitions" (auth chain, auth difference, reverse
topological power ordering); rooms/v12.md "State resolution" (conflicted state subgraph).

Everything works on event ids and fetches events through one `AuthGraph` per resolution, which
memoises each event, its auth event ids and its auth chain, so every event is fetched and every
auth chain computed at most once per call. Walks are iterative (a room's power levels history can
be thousands of events deep) and tolerate missing events (skipped) and cycles (a malformed graph
must not hang the server; the back edge is ignored).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

from homeserver.protocol.events import Event

_EMPTY: frozenset[str] = frozenset()


class AuthGraph:
    """Memoised view of the auth DAG for one resolution; `get_event` is only called once per id."""

    __slots__ = ("_auth_ids", "_chains", "_events", "_get_event")

    def __init__(self, get_event: Callable[[str], Event | None]) -> None:
        self._get_event = get_event
        self._events: dict[str, Event | None] = {}
        self._auth_ids: dict[str, tuple[str, ...]] = {}
        self._chains: dict[str, frozenset[str]] = {}

    def event(self, event_id: str) -> Event | None:
        try:
            return self._events[event_id]
        except KeyError:
            event = self._events[event_id] = self._get_event(event_id)
            return event

    def auth_ids(self, event_id: str) -> tuple[str, ...]:
        """The ids in the event's `auth_events` that we can fetch (missing ones are skipped)."""
        try:
            return self._auth_ids[event_id]
        except KeyError:
            pass
        event = self.event(event_id)
        ids = () if event is None else tuple(a for a in event.auth_event_ids if self.event(a))
        self._auth_ids[event_id] = ids
        return ids

    def auth_chain(self, event_id: str) -> frozenset[str]:
        """Spec "Auth chain": every event reachable through `auth_events` links, not the event
        itself."""
        chain = self._chains.get(event_id)
        if chain is None:
            chains = self._chains

            def unknown_auth_ids(node: str) -> Iterable[str]:
                # Events whose chain is memoised are not walked again.
                return (a for a in self.auth_ids(node) if a not in chains)

            for node in post_order((event_id,), unknown_auth_ids):
                if node not in chains:
                    parts: list[Iterable[str]] = []
                    for auth_id in self.auth_ids(node):
                        parts.append((auth_id,))
                        # A cycle leaves the back edge's target without a chain yet: skip it.
                        parts.append(chains.get(auth_id, _EMPTY))
                    chains[node] = frozenset().union(*parts)
            chain = chains[event_id]
        return chain

    def full_auth_chain(self, event_ids: Iterable[str]) -> set[str]:
        """Spec "Auth difference": the union of the auth chains of the events of one state set."""
        full: set[str] = set()
        for event_id in event_ids:
            full |= self.auth_chain(event_id)
        return full


def post_order(roots: Iterable[str], children: Callable[[str], Iterable[str]]) -> Iterator[str]:
    """Every node reachable from `roots`, each once, after all of its children (iterative DFS).

    A child that is still on the DFS stack (a cycle) is not descended into again.
    """
    done: set[str] = set()
    on_stack: set[str] = set()
    for root in roots:
        if root in done:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(children(root)))]
        on_stack.add(root)
        while stack:
            node, pending = stack[-1]
            for child in pending:
                if child not in done and child not in on_stack:
                    on_stack.add(child)
                    stack.append((child, iter(children(child))))
                    break
            else:
                stack.pop()
                on_stack.discard(node)
                done.add(node)
                yield node


def auth_difference(state_sets: Sequence[Mapping[Any, str]], graph: AuthGraph) -> set[str]:
    """Spec "Auth difference": the union of the full auth chains C_i of the state sets minus
    their intersection.

    C_i here includes the events of S_i themselves, not only their auth chains. Read literally
    the spec leaves them out; Synapse (the peer we must agree with) puts them in, and the two
    readings can order the conflicted events differently, so we follow Synapse.
    """
    chains = [
        graph.full_auth_chain(set(state_set.values())) | set(state_set.values())
        for state_set in state_sets
    ]
    if not chains:
        return set()
    union = set().union(*chains)
    return union.difference(set.intersection(*chains))


def conflicted_subgraph(conflicted: Collection[str], graph: AuthGraph) -> set[str]:
    """Spec rooms v12 "Conflicted state subgraph": every event on an `auth_events` path from one
    event of the conflicted state set to another, endpoints included.

    An event X lies on such a path iff some conflicted event reaches X (X is in its auth chain,
    or X is that event) and X reaches some conflicted event (one is in X's auth chain, or X is
    one). Because the DAG is acyclic both ends of a path through a non-conflicted X differ.
    """
    conflicted_set = frozenset(conflicted)
    reachable: set[str] = set()  # events reachable from some conflicted event (strictly)
    for event_id in conflicted_set:
        reachable |= graph.auth_chain(event_id)
    subgraph: set[str] = set()
    for event_id in reachable:
        # Middle events and path ends: reached from a conflicted event and either conflicted
        # themselves (an end) or reaching a conflicted event further down (a middle).
        if event_id in conflicted_set or not graph.auth_chain(event_id).isdisjoint(conflicted_set):
            subgraph.add(event_id)
    for event_id in conflicted_set:
        # Path starts: a conflicted event that reaches another conflicted event.
        if not graph.auth_chain(event_id).isdisjoint(conflicted_set):
            subgraph.add(event_id)
    return subgraph


def topological_order(
    event_ids: Collection[str], graph: AuthGraph, key: Callable[[str], Any]
) -> list[str]:
    """The lexicographically smallest topological ordering of `event_ids` by auth events,
    earliest first, comparing candidates with `key` (smallest first).

    Spec "Reverse topological power ordering": Kahn's algorithm, at each step taking the smallest
    candidate. The order is that of the auth DAG restricted to `event_ids`: X must come after Y
    whenever Y is in X's auth chain, even if the path between them leaves the set. The edges
    handed to Kahn's algorithm are each event's *nearest* ancestors in the set (the walk stops at
    the first member on every path), which has the same reachability as the full auth chains
    but far fewer edges.
    """
    members = frozenset(event_ids)
    nearest: dict[str, frozenset[str]] = {}  # node -> nearest members among its ancestors

    def below(node: str) -> frozenset[str]:
        parts: list[Iterable[str]] = []
        for auth_id in graph.auth_ids(node):
            if auth_id in members:
                parts.append((auth_id,))
            else:
                parts.append(nearest.get(auth_id, _EMPTY))
        return frozenset().union(*parts)

    def walk_children(node: str) -> Iterable[str]:
        # Descend only through non-members: a member stops the walk on that path.
        return (a for a in graph.auth_ids(node) if a not in members)

    for node in post_order(members, walk_children):
        nearest[node] = below(node)

    waiting_on: dict[str, int] = {}
    dependents: dict[str, list[str]] = {member: [] for member in members}
    ready: list[tuple[Any, str]] = []
    for member in members:
        deps = nearest[member]
        waiting_on[member] = len(deps)
        for dep in deps:
            dependents[dep].append(member)
        if not deps:
            ready.append((key(member), member))
    heapq.heapify(ready)

    ordered: list[str] = []
    while ready:
        _, member = heapq.heappop(ready)
        ordered.append(member)
        for dependent in dependents[member]:
            waiting_on[dependent] -= 1
            if waiting_on[dependent] == 0:
                heapq.heappush(ready, (key(dependent), dependent))
    # Members on a cycle never become ready; a valid auth DAG has none. They are dropped rather
    # than ordered arbitrarily.
    return ordered
