"""State resolution v2 (rooms v2-v11) and v2.1 (rooms v12): hand-derived DAG cases.

Spec: rooms/fragments/v2-state-res.md and rooms/v12.md "State resolution". Each scenario says,
from the spec text, why the resolved state is what the test asserts. Step numbers refer to the
spec's "Algorithm" section:
  1. power events of the full conflicted set (+ their auth chains within it), reverse
     topological power ordering;  2. iterative auth checks from the unconflicted state map
     (v2.1: from an empty map);  3. the rest by mainline ordering on the partial state's power
     levels;  4. iterative auth checks again;  5. the unconflicted state map overrides.

Histories are built with `Line`: each event cites exactly the auth events the selection
algorithm picks from its line's state, and is checked with the auth rules when built (so every
history here is valid where it was sent unless a test says otherwise). Scenarios that hold for
both algorithms run on room versions 10 (v2) and 12 (v2.1).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from homeserver.protocol.auth_rules import auth_types_for_event, check_auth_rules
from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.protocol.state_res_v2 import (
    AuthGraph,
    auth_difference,
    conflicted_subgraph,
    is_power_event,
    iterative_auth_checks,
    mainline_order,
    resolve_state,
    reverse_topological_power_order,
    sender_power_level,
    separate,
)
from tests.protocol.dag_gen import generate_forked_dag
from tests.protocol.factory import make_event

ALICE = "@alice:example.org"  # the creator: 100 in v10, infinite in v12
BOB = "@bob:example.org"
CAROL = "@carol:other.org"
DAVE = "@dave:example.org"
ERIN = "@erin:example.org"

PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")
TOPIC = ("m.room.topic", "")
CREATE = ("m.room.create", "")


def member_key(user: str) -> tuple[str, str]:
    return ("m.room.member", user)


BOTH = pytest.mark.parametrize("version", ["10", "12"])


# ---- building histories ----------------------------------------------------------------------


class Room:
    """The event store of one room; `get` is the `get_event` handed to state resolution."""

    def __init__(self, version: str) -> None:
        self.rv = KNOWN_ROOM_VERSIONS[version]
        self.v12 = self.rv.room_id_from_create_event
        self.events: dict[str, Event] = {}
        self.fetched: list[str] = []
        content: dict[str, Any] = {"room_version": version}
        if not self.rv.implicit_room_creator:
            content["creator"] = ALICE
        create = make_event(
            "$create",
            "m.room.create",
            ALICE,
            content,
            state_key="",
            room_id=None if self.v12 else "!room:example.org",
            room_version=self.rv,
            origin_server_ts=0,
        )
        self.room_id = create.room_id
        self.events[create.event_id] = create
        self.create = create

    def get(self, event_id: str) -> Event | None:
        self.fetched.append(event_id)
        return self.events.get(event_id)

    def users(self, **levels: int) -> dict[str, int]:
        """A power levels `users` map; v10 lists the creator at 100, v12 may not list her."""
        users = {} if self.v12 else {ALICE: 100}
        users.update(
            {
                f"@{name}:{'other.org' if name == 'carol' else 'example.org'}": level
                for name, level in levels.items()
            }
        )
        return users

    def resolve(self, *state_sets: dict) -> dict:
        return resolve_state(self.rv, list(state_sets), self.get)

    def graph(self) -> AuthGraph:
        return AuthGraph(self.get)

    def line(self) -> Line:
        return Line(self, {CREATE: self.create}, self.create.event_id, 0)


class Line:
    """One server's linear view of the room: its state and its last event."""

    def __init__(self, room: Room, state: dict, last: str, ts: int) -> None:
        self.room, self.state, self.last, self.ts = room, dict(state), last, ts

    def fork(self) -> Line:
        return Line(self.room, self.state, self.last, self.ts)

    def send(
        self,
        event_id: str,
        type: str,
        sender: str,
        content: dict | None = None,
        *,
        state_key: str | None = None,
        ts: int | None = None,
        rejected: str | None = None,
    ) -> Event:
        room = self.room
        content = content or {}
        keys = auth_types_for_event(room.rv, type, sender, state_key, content)
        auth = {k: self.state[k] for k in keys if k in self.state}
        self.ts = self.ts + 10 if ts is None else ts
        event = make_event(
            event_id,
            type,
            sender,
            content,
            state_key=state_key,
            prev_events=[self.last],
            auth_events=[e.event_id for e in auth.values()],
            room_id=room.room_id,
            room_version=room.rv,
            origin_server_ts=self.ts,
        )
        check_auth_rules(event, {**auth, CREATE: room.create})  # valid where it was sent
        if rejected is not None:
            event = dataclasses.replace(event, rejected_reason=rejected)
        room.events[event_id] = event
        self.last = event_id
        if state_key is not None:
            self.state[(type, state_key)] = event
        return event

    def member(
        self, event_id: str, user: str, membership: str, sender: str | None = None, **kw: Any
    ) -> Event:
        content = {"membership": membership, **kw.pop("content", {})}
        return self.send(event_id, "m.room.member", sender or user, content, state_key=user, **kw)

    def power_levels(self, event_id: str, sender: str, **kw: Any) -> Event:
        content = {"users": kw.pop("users"), **kw.pop("extra", {})}
        return self.send(event_id, "m.room.power_levels", sender, content, state_key="", **kw)

    def topic(self, event_id: str, sender: str, topic: str, **kw: Any) -> Event:
        return self.send(event_id, "m.room.topic", sender, {"topic": topic}, state_key="", **kw)

    def ids(self) -> dict:
        return {key: event.event_id for key, event in self.state.items()}


def standard(version: str, users: dict[str, int] | None = None, **pl_extra: Any) -> Line:
    """Alice creates the room; power levels `users` (default: bob 50) with the spec defaults
    (state_default, ban and kick 50); public join rules; bob and carol join; alice sets a topic.
    Base timestamps are 10..70, fork events use >= 1000."""
    room = Room(version)
    line = room.line()
    line.member("$alice_join", ALICE, "join")
    line.power_levels("$pl0", ALICE, users=room.users(**(users or {"bob": 50})), extra=pl_extra)
    line.send("$jr_public", "m.room.join_rules", ALICE, {"join_rule": "public"}, state_key="")
    line.member("$bob_join", BOB, "join")
    line.member("$carol_join", CAROL, "join")
    line.topic("$topic0", ALICE, "base topic")
    return line


# ---- the definitions, one by one ---------------------------------------------------------------


def test_separate_unconflicted_and_conflicted():
    # Spec "Unconflicted state map and conflicted state set": a key is unconflicted only if it
    # is present in *every* state set with the same value; a key missing from one set is
    # conflicted even if all the sets that have it agree.
    s1 = {CREATE: "$c", TOPIC: "$t1", member_key(BOB): "$b"}
    s2 = {CREATE: "$c", TOPIC: "$t2"}
    unconflicted, conflicted = separate([s1, s2])
    assert unconflicted == {CREATE: "$c"}
    assert conflicted == {TOPIC: {"$t1", "$t2"}, member_key(BOB): {"$b"}}


def test_is_power_event():
    # Spec "Power events": power levels, join rules, and leave/ban memberships whose sender is
    # not the target (kick, ban, unban). A self-leave, a join, the create event and a topic are
    # not power events.
    line = standard("10")
    fork = line.fork()
    assert is_power_event(line.state[PL]) and is_power_event(line.state[JR])
    assert is_power_event(fork.member("$kick", CAROL, "leave", ALICE))
    assert is_power_event(line.fork().member("$ban", CAROL, "ban", ALICE))
    assert not is_power_event(line.fork().member("$self_leave", CAROL, "leave"))
    assert not is_power_event(line.state[member_key(BOB)])
    assert not is_power_event(line.state[CREATE])
    assert not is_power_event(line.state[TOPIC])


def test_auth_chain_excludes_the_event_and_fetches_each_event_once():
    # Spec "Auth chain": E's auth events, theirs, and so on; E itself is not in it.
    line = standard("10")
    room = line.room
    graph = room.graph()
    assert graph.auth_chain("$bob_join") == {"$create", "$alice_join", "$pl0", "$jr_public"}
    assert graph.auth_chain("$create") == frozenset()
    graph.auth_chain("$topic0")
    graph.auth_chain("$carol_join")
    assert len(room.fetched) == len(set(room.fetched))  # memoised per resolution


def test_auth_difference_counts_each_state_sets_own_events():
    # Spec "Auth difference": union minus intersection of C_i, the full auth chain of state set
    # S_i. We count S_i's own events as part of C_i (as Synapse does; the literal reading leaves
    # them out). Bob bans carol on one fork; the other fork only changes the power levels. Bob's
    # and carol's joins are in both state sets, so they are in every C_i and drop out; only the
    # two forks' new events differ: $pl_a (only in S_a, cited by nothing in S_b) and $ban.
    line = standard("10")
    a, b = line.fork(), line.fork()
    a.power_levels("$pl_a", ALICE, users=line.room.users(bob=50, dave=10), ts=1000)
    b.member("$ban", CAROL, "ban", BOB, ts=1000)
    assert auth_difference([a.ids(), b.ids()], line.room.graph()) == {"$pl_a", "$ban"}


def test_conflicted_subgraph_is_the_paths_between_conflicted_events():
    # Spec rooms v12 "Conflicted state subgraph": the events on auth_events paths from one
    # conflicted event to another. With $pl0 and $pl2 conflicted, $pl2 -> $pl1 -> $pl0 and
    # $pl2 -> $bob_join -> $jr_public -> $pl0 (bob's join cites the join rules, which cite
    # $pl0) are such paths. $alice_join and $create are reachable from $pl2 but lead to no
    # conflicted event, so they are not in the subgraph; $carol_join is not reachable at all.
    line = standard("12", users={})
    line.power_levels("$pl1", ALICE, users={BOB: 100}, ts=1000)
    line.power_levels("$pl2", BOB, users={BOB: 100, CAROL: 50}, ts=1010)
    subgraph = conflicted_subgraph({"$pl0", "$pl2"}, line.room.graph())
    assert subgraph == {"$pl0", "$pl1", "$pl2", "$bob_join", "$jr_public"}


@BOTH
def test_reverse_topological_power_ordering(version):
    # Spec "Reverse topological power ordering": Kahn's algorithm; among the candidates the
    # sender with the greater power level (read from the event's own auth events) comes first,
    # then the smaller origin_server_ts, then the smaller event_id. The auth DAG overrides all
    # of that: alice's topic cites $pl_dave, so it cannot come before it.
    line = standard(
        version, users={"bob": 50, "carol": 50, "dave": 50, "erin": 10}, events={"m.room.topic": 0}
    )
    room = line.room
    line.member("$dave_join", DAVE, "join")
    line.member("$erin_join", ERIN, "join")
    line.fork().topic("$x_bob", BOB, "b", ts=100)
    line.fork().topic("$y_carol", CAROL, "c", ts=100)  # same power and ts as $x_bob: id decides
    line.fork().topic("$a_dave", DAVE, "d", ts=200)  # same power, later ts
    line.fork().topic("$b_erin", ERIN, "e", ts=1)  # earliest ts, but lowest power
    dave = line.fork()
    dave.power_levels(
        "$pl_dave",
        DAVE,
        users=line.state[PL].content["users"],
        extra={"events": {"m.room.topic": 0}},
        ts=150,
    )
    dave.topic("$alice_topic", ALICE, "a", ts=1)  # highest power, cites $pl_dave
    events = ["$x_bob", "$y_carol", "$a_dave", "$b_erin", "$pl_dave", "$alice_topic"]
    order = reverse_topological_power_order(room.rv, events, room.graph())
    assert order == ["$x_bob", "$y_carol", "$pl_dave", "$alice_topic", "$a_dave", "$b_erin"]


def test_sender_power_level_reads_the_events_own_auth_events():
    # Spec "Reverse topological power ordering" rule 1: power "when looking at their respective
    # auth_events". Rooms v12: the creator's power is infinite even though v12 events do not
    # cite the create event (it is found from the room id).
    line = standard("12", users={"bob": 50})
    room = line.room
    graph = room.graph()
    alice_topic = line.fork().topic("$alice_topic", ALICE, "a")
    bob_topic = line.fork().topic("$bob_topic", BOB, "b")
    assert "$create" not in alice_topic.auth_event_ids
    assert sender_power_level(room.rv, alice_topic, graph) == float("inf")
    assert sender_power_level(room.rv, bob_topic, graph) == 50


@BOTH
def test_mainline_ordering(version):
    # Spec "Mainline ordering": P0 = $pl2, P1 = $pl1, P2 = $pl0. An event's position is the index
    # of the first power levels event in the mainline reached from its *auth events* (not from
    # itself); infinity if none. Larger positions come first, then smaller ts, then smaller id.
    topic0 = {"events": {"m.room.topic": 0}}
    line = standard(version, users={"bob": 50}, **topic0)
    side = line.fork()
    on_pl0 = line.fork().topic("$on_pl0", CAROL, "x", ts=900)  # position 2
    line.power_levels("$pl1", ALICE, users=line.room.users(bob=50, dave=1), extra=topic0, ts=1000)
    on_pl1 = line.fork().topic("$on_pl1", CAROL, "x", ts=100)  # position 1
    line.power_levels("$pl2", ALICE, users=line.room.users(bob=50, dave=2), extra=topic0, ts=1010)
    on_pl2 = line.fork().topic("$on_pl2", CAROL, "x", ts=1)  # position 0
    # A power levels event off the mainline, citing $pl0: events citing it land on $pl0's
    # position, 2, and then ts decides ($off_side 500 < $on_pl0 900).
    side.power_levels(
        "$pl_side", ALICE, users=line.room.users(bob=50, erin=1), extra=topic0, ts=400
    )
    off_side = side.topic("$off_side", CAROL, "x", ts=500)
    # The create event cites nothing at all: position infinity, first.
    events = [e.event_id for e in (on_pl2, on_pl1, on_pl0, off_side)] + ["$create"]
    order = mainline_order(events, "$pl2", line.room.graph())
    assert order == ["$create", "$off_side", "$on_pl0", "$on_pl1", "$on_pl2"]
    # Without a power levels event there is no mainline: every position is infinity and only
    # ts and event id remain.
    assert mainline_order(events, None, line.room.graph()) == [
        "$create",
        "$on_pl2",
        "$on_pl1",
        "$off_side",
        "$on_pl0",
    ]


@BOTH
def test_iterative_auth_checks_fall_back_to_non_rejected_auth_events(version):
    # Spec "Iterative auth checks": a key the state lacks is taken from the event's auth_events
    # "if the auth event is not rejected". From an empty state, bob's topic is authorised by
    # the power levels and membership it cites. If its cited power levels event was rejected,
    # it may not be used: without power levels bob has level 0 < state_default 50.
    line = standard(version, users={"bob": 50})
    room = line.room
    line.topic("$bob_topic", BOB, "hello")
    assert iterative_auth_checks(room.rv, ["$bob_topic"], {}, room.graph()) == {TOPIC: "$bob_topic"}
    room.events["$pl0"] = dataclasses.replace(room.events["$pl0"], rejected_reason="test")
    assert iterative_auth_checks(room.rv, ["$bob_topic"], {}, room.graph()) == {}
    # A key present in the state wins over the cited event: with the state saying bob is
    # banned, his topic fails although the join it cites would allow it.
    room.events["$pl0"] = dataclasses.replace(room.events["$pl0"], rejected_reason=None)
    ban = line.fork().member("$ban_bob", BOB, "ban", ALICE)
    state = {member_key(BOB): ban.event_id}
    assert iterative_auth_checks(room.rv, ["$bob_topic"], state, room.graph()) == state


# ---- scenarios ---------------------------------------------------------------------------------


@BOTH
def test_ban_vs_concurrent_power_level_demotion(version):
    # Bob (50 = ban level) bans carol while alice concurrently demotes bob to 0; bob's ban even
    # has the earlier timestamp. Step 1: both are power events; $pl0 (conflicted: it is the
    # other fork's power levels) precedes both as their auth ancestor, and carol's join joins X
    # because it is in the ban's auth chain and conflicted. Kahn's algorithm then prefers the
    # sender with the greater power: alice (100 / infinite) before bob (50), whatever the ts.
    # Step 2: the ban is checked against $pl_demote, where bob has 0 < ban level 50: ignored.
    line = standard(version)
    room = line.room
    a, b = line.fork(), line.fork()
    a.power_levels("$pl_demote", ALICE, users=room.users(), ts=2000)
    b.member("$ban_carol", CAROL, "ban", BOB, ts=1000)
    resolved = room.resolve(a.ids(), b.ids())
    assert resolved[PL] == "$pl_demote"
    assert resolved[member_key(CAROL)] == "$carol_join"


@BOTH
def test_join_rules_flipped_to_invite_while_someone_joins(version):
    # Dave joins through the public join rules while alice concurrently switches them to
    # invite. Step 1: only the two join rules events are power events (a join is not); both by
    # alice, so ts orders them and $jr_invite ends up in the partial state. Steps 3-4: dave's
    # join is ordered and checked afterwards, against invite-only join rules, and dave was never
    # invited: ignored. His key was only in one state set (conflicted, not unconflicted), so
    # step 5 does not bring it back: dave is not in the room. His earlier ts does not help.
    line = standard(version)
    room = line.room
    a, b = line.fork(), line.fork()
    a.send("$jr_invite", "m.room.join_rules", ALICE, {"join_rule": "invite"}, state_key="", ts=2000)
    b.member("$dave_join", DAVE, "join", ts=1000)
    resolved = room.resolve(a.ids(), b.ids())
    assert resolved[JR] == "$jr_invite"
    assert member_key(DAVE) not in resolved


@BOTH
def test_power_level_race_between_admins(version):
    # Two admins race on the power levels: bob (75) demotes carol (50 -> 0) and alice (100 /
    # infinite) demotes bob (75 -> 0), bob first by ts. (A literal mutual demotion cannot be
    # valid: auth rule "changing another user's level needs a level above theirs" means only
    # the higher admin can demote the other.) Step 1 orders alice first by sender power; step 2
    # then checks bob's change against $pl_alice, where bob has 0 < state_default 50: ignored.
    # Carol keeps 50 because the winning event never changed her.
    line = standard(version, users={"bob": 75, "carol": 50})
    room = line.room
    a, b = line.fork(), line.fork()
    b.power_levels("$pl_bob", BOB, users=room.users(bob=75), ts=1000)
    a.power_levels("$pl_alice", ALICE, users=room.users(carol=50), ts=2000)
    resolved = room.resolve(a.ids(), b.ids())
    assert resolved[PL] == "$pl_alice"
    assert room.events[resolved[PL]].content["users"].get(CAROL) == 50


@BOTH
@pytest.mark.parametrize(
    ("ts_bob", "ts_carol", "winner"),
    [
        (1000, 2000, "$pl_carol"),  # equal power: the earlier ts is applied first, loses
        (2000, 1000, "$pl_bob"),
        (1000, 1000, "$pl_carol"),  # equal power and ts: "$pl_bob" < "$pl_carol" goes first
    ],
)
def test_power_level_race_between_equal_admins_ties(version, ts_bob, ts_carol, winner):
    # Bob and carol are both at 100 and each change someone else's level. Step 1: equal sender
    # power, so origin_server_ts orders them, then event_id. Both pass step 2 (the later one
    # only removes or adds entries below 100 relative to the earlier), so the one applied last
    # is the resolved power levels event and the other change is lost.
    line = standard(version, users={"bob": 100, "carol": 100})
    room = line.room
    a, b = line.fork(), line.fork()
    a.power_levels("$pl_bob", BOB, users=room.users(bob=100, carol=100, dave=10), ts=ts_bob)
    b.power_levels("$pl_carol", CAROL, users=room.users(bob=100, carol=100, erin=20), ts=ts_carol)
    assert room.resolve(a.ids(), b.ids())[PL] == winner
    assert room.resolve(b.ids(), a.ids())[PL] == winner  # the order of state sets is irrelevant


@BOTH
@pytest.mark.parametrize(
    ("ts_alice", "ts_bob", "winner"), [(1000, 2000, "$topic_bob"), (2000, 1000, "$topic_alice")]
)
def test_topic_conflict_on_the_same_mainline_position_is_settled_by_ts(
    version, ts_alice, ts_bob, winner
):
    # Two topics, both citing $pl0. Neither is a power event, so both go to step 3; both have
    # mainline position 0 (they cite P0 = $pl0 directly), so ts orders them and step 4 applies
    # both: the later one wins. The senders' power (alice > bob) plays no part for non-power
    # events.
    line = standard(version)
    a, b = line.fork(), line.fork()
    a.topic("$topic_alice", ALICE, "from alice", ts=ts_alice)
    b.topic("$topic_bob", BOB, "from bob", ts=ts_bob)
    assert line.room.resolve(a.ids(), b.ids())[TOPIC] == winner


@BOTH
def test_stale_topic_cannot_reset_a_newer_topic(version):
    # Alice's server changes the power levels ($pl1) and then the topic ($topic_new); bob's
    # lagging server, with a fast clock, sets a topic on $pl0 *later* by ts. Step 1-2 resolve
    # the power levels to $pl1 (it descends from $pl0). Step 3: the mainline is [$pl1, $pl0];
    # bob's topic cites $pl0 (position 1), alice's cites $pl1 (position 0). The larger position
    # comes first, so alice's topic is applied last and wins despite bob's later ts.
    line = standard(version)
    room = line.room
    a, b = line.fork(), line.fork()
    a.power_levels("$pl1", ALICE, users=room.users(bob=50, dave=10), ts=1000)
    a.topic("$topic_new", ALICE, "new", ts=1100)
    b.topic("$topic_stale", BOB, "stale", ts=9000)
    resolved = room.resolve(a.ids(), b.ids())
    assert (resolved[PL], resolved[TOPIC]) == ("$pl1", "$topic_new")


@BOTH
def test_offtopic_fork_does_not_affect_the_result(version):
    # Two forks conflict on the topic; a third fork only has messages and carol's display name
    # change. Adding it brings the base topic back into the conflicted set, but $topic0 (ts 60,
    # position 0 like the others) is applied first and overwritten; carol's two joins are not
    # power events and are ordered by ts, so her newer profile wins. The topic and the power
    # levels resolve exactly as without the third fork, in any order of the state sets.
    line = standard(version)
    room = line.room
    a, b, c = line.fork(), line.fork(), line.fork()
    a.topic("$topic_a", ALICE, "a", ts=1000)
    b.topic("$topic_b", BOB, "b", ts=2000)
    c.send("$msg1", "m.room.message", CAROL, {"body": "hi"}, ts=1500)
    c.member("$carol_rename", CAROL, "join", content={"displayname": "C"}, ts=1600)
    c.send("$msg2", "m.room.message", BOB, {"body": "hey"}, ts=1700)
    two = room.resolve(a.ids(), b.ids())
    three = room.resolve(a.ids(), c.ids(), b.ids())
    assert two[TOPIC] == three[TOPIC] == "$topic_b"
    assert two[PL] == three[PL] == "$pl0"
    assert three[member_key(CAROL)] == "$carol_rename"
    assert room.resolve(c.ids(), b.ids(), a.ids()) == three


@BOTH
def test_event_whose_authorisation_is_invalidated_by_a_concurrent_ban(version):
    # Bob (50) sets the topic while alice concurrently bans him (at a later ts). Step 1: the ban
    # is a power event; bob's join is in its auth chain and conflicted, so it is sorted (and
    # applied) before the ban. Step 3-4: bob's topic is checked against the partial state, where
    # bob is banned, so it fails ("the sender must be joined") and the base topic stays.
    line = standard(version)
    room = line.room
    a, b = line.fork(), line.fork()
    a.member("$ban_bob", BOB, "ban", ALICE, ts=2000)
    b.topic("$topic_bob", BOB, "sneaky", ts=1000)
    resolved = room.resolve(a.ids(), b.ids())
    assert resolved[member_key(BOB)] == "$ban_bob"
    assert resolved[TOPIC] == "$topic0"


@BOTH
def test_rejected_event_never_enters_the_state(version):
    # Event.rejected_reason set: the event was rejected and is never used. The rejected topic
    # would be applied last (latest ts, same mainline position), yet the iterative auth checks
    # skip it, so the other fork's topic wins.
    line = standard(version)
    a, b = line.fork(), line.fork()
    a.topic("$topic_ok", BOB, "ok", ts=1000)
    b.topic("$topic_rejected", ALICE, "rejected", ts=2000, rejected="auth failed on receipt")
    assert line.room.resolve(a.ids(), b.ids())[TOPIC] == "$topic_ok"


@BOTH
def test_identical_state_sets_pass_through_without_fetching(version):
    # No conflicted state: the unconflicted state map is the answer, nothing needs fetching.
    line = standard(version)

    def no_fetch(event_id: str) -> Event | None:
        raise AssertionError(f"fetched {event_id}")

    state = line.ids()
    assert resolve_state(line.room.rv, [state, dict(state)], no_fetch) == state
    assert resolve_state(line.room.rv, [state], no_fetch) == state
    assert resolve_state(line.room.rv, [], no_fetch) == {}


def test_room_versions_without_state_res_v2_are_refused():
    # Rooms v1 use state resolution v1, a different algorithm.
    with pytest.raises(ValueError, match="state res v2"):
        resolve_state(KNOWN_ROOM_VERSIONS["1"], [{}, {}], lambda event_id: None)


@BOTH
def test_unconflicted_state_passes_through(version):
    # Bob (50) sets a custom state event in the common history; then alice demotes him on one
    # fork and sets the topic on the other. Step 5 puts every unconflicted entry back, including
    # bob's note, which the resolved power levels would no longer let him send, and an
    # unconflicted entry whose event is not even in the store.
    line = standard(version)
    room = line.room
    line.send("$note", "org.example.note", BOB, {"n": 1}, state_key="")
    a, b = line.fork(), line.fork()
    a.power_levels("$pl_demote", ALICE, users=room.users(), ts=1000)
    b.topic("$topic_b", ALICE, "b", ts=1000)
    s_a, s_b = a.ids(), b.ids()
    s_a[("org.example.gone", "")] = s_b[("org.example.gone", "")] = "$not_in_store"
    resolved = room.resolve(s_a, s_b)
    assert resolved[PL] == "$pl_demote" and resolved[TOPIC] == "$topic_b"
    unconflicted = {k: v for k, v in s_a.items() if s_b.get(k) == v}
    assert {k: resolved[k] for k in unconflicted} == unconflicted
    assert resolved[("org.example.note", "")] == "$note"


# ---- v2 (rooms v10) versus v2.1 (rooms v12) ----------------------------------------------------


def _mainline_history(version: str) -> tuple[Room, dict, dict]:
    line = standard(version, users={"bob": 50}, events={"m.room.topic": 0})
    room = line.room
    a, b = line.fork(), line.fork()
    a.topic("$topic_carol", CAROL, "carol's", ts=5000)  # carol's server: clock ahead, no $pl1
    b.power_levels(
        "$pl1",
        ALICE,
        users=room.users(bob=50, dave=10),
        extra={"events": {"m.room.topic": 0}},
        ts=1000,
    )
    b.member("$bob_rename", BOB, "join", content={"displayname": "B"}, ts=1500)
    b.topic("$topic_alice", ALICE, "alice's", ts=2000)
    # Carol's server later hears of $pl1 and bob's rename (not of alice's topic) and merges
    # them: its state is fork b's power levels and bob, with its own topic.
    s_carol = {**b.ids(), TOPIC: "$topic_carol"}
    return room, s_carol, b.ids()


def test_v2_and_v2_1_differ_on_the_mainline_when_power_levels_are_unconflicted():
    # Only the topic is conflicted; $pl1 is unconflicted and (cited by bob's rename in both
    # state sets) in every auth chain, so it is not in the full conflicted set. No power events
    # are in conflict: step 1 selects nothing.
    # v2: step 2 starts from the unconflicted state map, so the partial state's power levels
    # are $pl1 and the mainline is [$pl1, $pl0]. Carol's topic cites $pl0 (position 1) and
    # alice's cites $pl1 (position 0): carol's first, alice's applied last -> alice's topic.
    # v2.1: step 2 starts from an empty map and has nothing to apply, so the partial state has
    # no power levels and no mainline; every position is infinity and ts decides: alice's
    # (2000) before carol's (5000) -> carol's topic.
    room, s_carol, s_alice = _mainline_history("10")
    assert room.resolve(s_carol, s_alice)[TOPIC] == "$topic_alice"
    room, s_carol, s_alice = _mainline_history("12")
    assert room.resolve(s_carol, s_alice)[TOPIC] == "$topic_carol"


def _reset_history(version: str) -> tuple[Room, dict, dict]:
    line = standard(version, users={})  # bob has 0
    room = line.room
    line.power_levels("$pl1", ALICE, users=room.users(bob=100), ts=1000)
    line.topic("$topic_bob", BOB, "bob is admin", ts=1100)
    line.power_levels("$pl2", BOB, users=room.users(bob=100, carol=50), ts=1200)
    # A server that suffered a state reset: its power levels went back to $pl0 although its
    # topic was set by bob under $pl1.
    reset = {**line.ids(), PL: "$pl0"}
    return room, line.ids(), reset


def test_v2_1_conflicted_subgraph_undoes_a_state_reset():
    # Conflicted: the power levels, $pl2 vs $pl0. $pl1 is in both full auth chains ($pl2 and
    # $topic_bob cite it), so it is not in the auth difference.
    # v2: the full conflicted set is {$pl0, $pl2}; step 2 applies $pl0 then checks bob's $pl2
    # against it, where bob has 0 < state_default 50: ignored. The reset sticks: $pl0.
    # v2.1: $pl1 lies on the path $pl2 -> $pl1 -> $pl0 between two conflicted events, so the
    # conflicted state subgraph brings it into the full conflicted set; step 2 applies $pl0,
    # $pl1 (bob -> 100) and then $pl2 passes: $pl2.
    room, good, reset = _reset_history("10")
    assert room.resolve(good, reset)[PL] == "$pl0"
    room, good, reset = _reset_history("12")
    assert room.resolve(good, reset)[PL] == "$pl2"


def _bogus_unconflicted_history(version: str) -> tuple[Room, dict, dict]:
    line = standard(version)  # bob 50 = state_default: he may send power levels
    room = line.room
    a, b = line.fork(), line.fork()
    a.power_levels("$pl_bob", BOB, users=room.users(bob=50, carol=50), ts=1000)
    b.member("$ban_bob", BOB, "ban", ALICE, ts=1100)
    b.power_levels("$pl_alice", ALICE, users=room.users(bob=50, dave=10), ts=1200)
    # A faulty server presents bob's power levels change *and* bob's ban as its state: an
    # honest resolution of the two forks would have dropped $pl_bob (see the ban test above).
    bogus = {**a.ids(), member_key(BOB): "$ban_bob"}
    return room, bogus, b.ids()


def test_v2_1_starts_the_auth_checks_from_an_empty_state():
    # The ban is unconflicted (both sets have it); the power levels conflict.
    # v2: step 2 starts from the unconflicted map, which says bob is banned. Alice's change
    # goes first (greater power) and passes; bob's is checked against "bob: ban" and fails.
    # v2.1: step 2 starts empty; bob's membership is not in the state, so it comes from
    # $pl_bob's own auth events, his join: $pl_bob passes against $pl_alice (it removes dave's
    # 10 and adds carol at 50, both within bob's 50) and is applied last. Step 5 still restores
    # the unconflicted ban in both.
    room, bogus, honest = _bogus_unconflicted_history("10")
    resolved = room.resolve(bogus, honest)
    assert (resolved[PL], resolved[member_key(BOB)]) == ("$pl_alice", "$ban_bob")
    room, bogus, honest = _bogus_unconflicted_history("12")
    resolved = room.resolve(bogus, honest)
    assert (resolved[PL], resolved[member_key(BOB)]) == ("$pl_bob", "$ban_bob")


@pytest.mark.parametrize(("version", "winner"), [("10", "$pl_alice"), ("12", "$pl_bob")])
def test_v12_creator_power_orders_first(version, winner):
    # Not a state-res difference but an auth-rules one that state res must honour: in v12 the
    # creator's power is infinite, found through the room id. Alice (creator) and bob (100)
    # change unrelated entries, bob first by ts. v10: equal power 100, ts orders bob's first and
    # alice's change is applied last. v12: alice outranks bob, her change goes first and bob's
    # (which only removes erin's 20 and adds dave's 10) is applied last.
    line = standard(version, users={"bob": 100})
    room = line.room
    a, b = line.fork(), line.fork()
    b.power_levels("$pl_bob", BOB, users=room.users(bob=100, dave=10), ts=1000)
    a.power_levels("$pl_alice", ALICE, users=room.users(bob=100, erin=20), ts=2000)
    assert room.resolve(a.ids(), b.ids())[PL] == winner
    if version == "12":
        assert "$create" in room.fetched  # fetched by room id: no v12 event cites it


# ---- the generated 1,000-event DAG -------------------------------------------------------------


@BOTH
def test_generated_dag_is_valid_and_conflicting(version):
    dag = generate_forked_dag(1000, seed=7, room_version=version)
    assert len(dag.events) == 1000
    _, conflicted = separate(dag.state_sets)
    assert {PL, TOPIC} <= conflicted.keys()
    power = [e for e in dag.events.values() if is_power_event(e)]
    assert len(power) > 50
    # Every event cites the create event (v1-v11) or none at all (v12), and only known events.
    for event in dag.events.values():
        assert all(a in dag.events for a in event.auth_event_ids)


@BOTH
def test_generated_dag_resolves_quickly_and_deterministically(version):
    dag = generate_forked_dag(1000, seed=3, room_version=version)
    start = time.perf_counter()
    resolved = resolve_state(dag.room_version, dag.state_sets, dag.get_event)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"resolving 1,000 events took {elapsed:.2f}s"
    assert dag.fetches <= len(dag.events)  # each event fetched at most once
    assert resolve_state(dag.room_version, dag.state_sets[::-1], dag.get_event) == resolved
    # Every resolved entry is an accepted event of the DAG with that key. (Not necessarily one
    # of the forks' values: when a kick fails the checks, the auth difference's earlier join
    # for that user can be the one left standing.)
    for key, event_id in resolved.items():
        event = dag.events[event_id]
        assert (event.type, event.state_key) == key and event.rejected_reason is None
