"""A random but valid room DAG with two conflicting forks, for state resolution tests and the
state resolution benchmark.

`generate_forked_dag(n_events=1000, seed=0)` simulates a room: a common trunk (create, the
creator's join, power levels, join rules, users joining) and then two forks that grow in
parallel from the trunk's last event. Every event cites exactly the auth events the auth events
selection picks from its fork's current state, and the generator checks each one with
`check_auth_rules` against that state before adding it, so every event is valid where it was
sent. Both forks change power levels, join rules, memberships (joins, leaves, kicks, bans,
unbans, invites), the topic and the name, so the two fork tips' states conflict on many keys and
their auth chains differ: resolving them exercises every step of the algorithm.

The result is deterministic for a given (n_events, seed, room_version, n_users).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from homeserver.protocol.auth_rules import AuthError, auth_types_for_event, check_auth_rules
from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from tests.protocol.factory import make_event

StateKey = tuple[str, str]

CREATE = ("m.room.create", "")
PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")


@dataclass
class ForkedDag:
    room_version: RoomVersion
    events: dict[str, Event]
    # The state after each fork's last event, (type, state_key) -> event_id.
    state_sets: list[dict[StateKey, str]]
    fork_tips: list[str]
    fetches: int = field(default=0)

    def get_event(self, event_id: str) -> Event | None:
        self.fetches += 1
        return self.events.get(event_id)


class _Fork:
    """One line of history: its current state, its last event, its clock."""

    def __init__(
        self,
        gen: _Generator,
        name: str,
        state: dict[StateKey, Event],
        last: str,
        depth: int,
        ts: int,
    ) -> None:
        self.gen = gen
        self.name = name
        self.state = dict(state)
        self.last = last
        self.depth = depth
        self.ts = ts

    def copy(self, name: str) -> _Fork:
        return _Fork(self.gen, name, self.state, self.last, self.depth, self.ts)

    # -- reading state --

    def membership(self, user: str) -> str | None:
        event = self.state.get(("m.room.member", user))
        return None if event is None else event.content.get("membership")

    def level(self, user: str) -> float:
        gen = self.gen
        if gen.rv.room_id_from_create_event and user == gen.creator:
            return float("inf")
        content = self.state[PL].content
        return content.get("users", {}).get(user, content.get("users_default", 0))

    def joined(self) -> list[str]:
        return [u for u in self.gen.users if self.membership(u) == "join"]

    # -- sending --

    def send(
        self, type: str, sender: str, content: dict[str, Any], state_key: str | None = None
    ) -> Event | None:
        """Build the event on this fork; add it if the auth rules allow it, else return None."""
        gen = self.gen
        keys = auth_types_for_event(gen.rv, type, sender, state_key, content)
        auth = {k: self.state[k] for k in keys if k in self.state}
        self.ts += gen.rng.randint(1, 5_000)
        event = make_event(
            f"${self.name}{len(gen.events)}:example.org",
            type,
            sender,
            content,
            state_key=state_key,
            prev_events=[self.last],
            auth_events=[e.event_id for e in auth.values()],
            room_id=gen.room_id,
            room_version=gen.rv,
            depth=self.depth + 1,
            origin_server_ts=self.ts,
        )
        check_map = dict(auth)
        check_map[CREATE] = gen.create
        try:
            check_auth_rules(event, check_map)
        except AuthError:
            return None
        gen.events[event.event_id] = event
        self.last = event.event_id
        self.depth += 1
        if state_key is not None:
            self.state[(type, state_key)] = event
        return event

    def member(self, target: str, membership: str, sender: str | None = None) -> Event | None:
        return self.send("m.room.member", sender or target, {"membership": membership}, target)

    # -- one random valid action --

    def random_action(self) -> None:
        gen, rng = self.gen, self.gen.rng
        joined = self.joined()
        for _ in range(50):  # pick actions until one is allowed
            action = rng.choices(gen.actions, weights=gen.weights)[0]
            if action(self, rng, joined) is not None:
                return
        # Always possible: the creator (joined throughout) sends a message.
        self.send("m.room.message", gen.creator, {"body": "tick"})


def _topic(fork: _Fork, rng: random.Random, joined: list[str]) -> Event | None:
    return fork.send("m.room.topic", rng.choice(joined), {"topic": f"t{rng.random():.6f}"}, "")


def _name(fork: _Fork, rng: random.Random, joined: list[str]) -> Event | None:
    return fork.send("m.room.name", rng.choice(joined), {"name": f"n{rng.random():.6f}"}, "")


def _message(fork: _Fork, rng: random.Random, joined: list[str]) -> Event | None:
    return fork.send("m.room.message", rng.choice(joined), {"body": "hello"})


def _join(fork: _Fork, rng: random.Random, joined: list[str]) -> Event | None:
    outside = [u for u in fork.gen.users if fork.membership(u) in (None, "leave", "invite")]
    return fork.member(rng.choice(outside), "join") if outside else None


def _leave(fork: _Fork, rng: random.Random, joined: list[str]) -> Event | None:
    leavers = [u for u in joined if u != fork.gen.creator]
    return fork.member(rng.choice(leavers), "leave") if leavers else None


def _moderate(fork: _Fork, rng: random.Random, joined: list[str]) -> Event | None:
    """A kick, ban or unban by a user who outranks the target."""
    gen = fork.gen
    mods = [u for u in joined if fork.level(u) >= 50]
    sender = rng.choice(mods)
    kind = rng.choice(("kick", "ban", "unban"))
    if kind == "unban":
        targets = [u for u in gen.users if fork.membership(u) == "ban"]
        return fork.member(rng.choice(targets), "leave", sender) if targets else None
    targets = [u for u in joined if fork.level(u) < fork.level(sender)]
    if not targets:
        return None
    return fork.member(rng.choice(targets), "leave" if kind == "kick" else "ban", sender)


def _invite(fork: _Fork, rng: random.Random, joined: list[str]) -> Event | None:
    outside = [u for u in fork.gen.users if fork.membership(u) in (None, "leave")]
    if not outside:
        return None
    return fork.member(rng.choice(outside), "invite", rng.choice(joined))


def _power_levels(fork: _Fork, rng: random.Random, joined: list[str]) -> Event | None:
    """An admin (100 or the creator) moves a non-admin between 0, 10 and 50."""
    gen = fork.gen
    admins = [u for u in joined if fork.level(u) >= 100]
    sender = rng.choice(admins)
    content = dict(fork.state[PL].content)
    users = dict(content.get("users", {}))
    candidates = [u for u in gen.users if u != gen.creator and users.get(u, 0) < 100]
    target = rng.choice(candidates)
    level = rng.choice((0, 10, 50))
    if level:
        users[target] = level
    else:
        users.pop(target, None)
    content["users"] = users
    return fork.send("m.room.power_levels", sender, content, "")


def _join_rules(fork: _Fork, rng: random.Random, joined: list[str]) -> Event | None:
    current = fork.state[JR].content.get("join_rule")
    rule = "invite" if current == "public" else "public"
    admins = [u for u in joined if fork.level(u) >= 100]
    return fork.send("m.room.join_rules", rng.choice(admins), {"join_rule": rule}, "")


class _Generator:
    actions = (
        _topic,
        _name,
        _message,
        _join,
        _leave,
        _moderate,
        _invite,
        _power_levels,
        _join_rules,
    )
    weights = (12, 4, 14, 18, 8, 10, 6, 10, 3)

    def __init__(self, seed: int, rv: RoomVersion, n_users: int) -> None:
        self.rng = random.Random(seed)
        self.rv = rv
        self.events: dict[str, Event] = {}
        self.creator = "@creator:example.org"
        self.admin = "@admin:example.org"  # a second admin at 100
        self.users = [self.creator, self.admin] + [
            f"@user{i}:{'example.org' if i % 2 else 'other.example'}" for i in range(n_users)
        ]
        v12 = rv.room_id_from_create_event
        content: dict[str, Any] = {"room_version": rv.identifier}
        if not rv.implicit_room_creator:
            content["creator"] = self.creator
        self.create = make_event(
            f"$create-{seed}",
            "m.room.create",
            self.creator,
            content,
            state_key="",
            room_id=None if v12 else "!bench:example.org",
            room_version=rv,
            origin_server_ts=1_000_000,
        )
        self.room_id = self.create.room_id
        self.events[self.create.event_id] = self.create


def generate_forked_dag(
    n_events: int = 1000,
    *,
    seed: int = 0,
    room_version: str | RoomVersion = "10",
    n_users: int = 40,
    trunk_fraction: float = 0.15,
) -> ForkedDag:
    """A valid room DAG of `n_events` events: a trunk, then two forks of about equal length."""
    rv = KNOWN_ROOM_VERSIONS[room_version] if isinstance(room_version, str) else room_version
    gen = _Generator(seed, rv, n_users)
    trunk = _Fork(gen, "t", {CREATE: gen.create}, gen.create.event_id, 0, 1_000_000)
    creator, admin = gen.creator, gen.admin

    assert trunk.member(creator, "join")
    users = {} if rv.room_id_from_create_event else {creator: 100}
    users[admin] = 100
    pl_content = {"users": users, "events": {"m.room.topic": 0}, "state_default": 50}
    assert trunk.send("m.room.power_levels", creator, pl_content, "")
    assert trunk.send("m.room.join_rules", creator, {"join_rule": "public"}, "")
    for user in gen.users[1:]:
        assert trunk.member(user, "join")
        if len(gen.events) >= n_events * trunk_fraction:
            break
    while len(gen.events) < n_events * trunk_fraction:
        trunk.random_action()

    forks = [trunk.copy("a"), trunk.copy("b")]
    # Make sure the forks really conflict on power levels and the topic from the start.
    assert forks[0].send("m.room.topic", creator, {"topic": "fork a"}, "")
    assert forks[1].send("m.room.topic", creator, {"topic": "fork b"}, "")
    while len(gen.events) < n_events:
        gen.rng.choice(forks).random_action()

    return ForkedDag(
        room_version=rv,
        events=gen.events,
        state_sets=[{k: e.event_id for k, e in fork.state.items()} for fork in forks],
        fork_tips=[fork.last for fork in forks],
    )
