"""auth_power_levels.py: the m.room.power_levels rules.

Rule numbers are those of rooms/v12.md rule 10 (v10-v11: rule 9, one lower from 10.5 on since
10.4 is new in v12; v6-v9: 9.1-9.8 without the integer checks; v1-v5: rule 10, `events` only).
In the standard room ALICE has 100 (v12: infinite, as creator), MOD 50, BOB 0.
"""

from __future__ import annotations

import pytest

from tests.protocol.auth_room import ALICE, BOB, CAROL, MOD, Room

CURRENT = ["10", "11", "12"]
NAMED = ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"]


@pytest.fixture(params=CURRENT)
def version(request):
    return request.param


def current(room: Room) -> dict:
    return room.state[("m.room.power_levels", "")].content


def change(room: Room, sender: str, **content):
    """A power levels event from `sender`: the current content updated with `content`; a
    value of None removes the key."""
    new = {**current(room), **content}
    new = {k: v for k, v in new.items() if v is not None}
    return room.event("m.room.power_levels", sender, new, state_key="")


def users(room: Room, **extra) -> dict:
    result = dict(current(room)["users"])
    for user, level in extra.items():
        user = {"bob": BOB, "carol": CAROL, "mod": MOD, "alice": ALICE}[user]
        if level is None:
            result.pop(user, None)
        else:
            result[user] = level
    return result


# ---- 10.1-10.3: shape of the content -----------------------------------------------------------


@pytest.mark.parametrize("name", NAMED)
@pytest.mark.parametrize("value", ["50", True, 50.0, None.__class__])
def test_named_levels_must_be_integers(version, name, value):
    # Spec v12 10.1 / v10-v11 9.1: users_default, events_default, state_default, ban, redact,
    # kick, invite, if present, must be integers: no strings, booleans or floats.
    room = Room.standard(version)
    if value is None.__class__:
        value = {"nested": 1}
    assert "not an integer" in room.reason(change(room, ALICE, **{name: value}))
    assert room.allows(change(room, ALICE, **{name: 0}))


@pytest.mark.parametrize("name", ["events", "notifications"])
@pytest.mark.parametrize("value", [{"x": "50"}, {"x": True}, {"x": None}, ["x"], "x", 5])
def test_events_and_notifications_must_be_objects_of_integers(version, name, value):
    # Spec v12 10.2 / v10-v11 9.2.
    room = Room.standard(version)
    assert "object of integers" in room.reason(change(room, ALICE, **{name: value}))
    assert room.allows(change(room, ALICE, **{name: {"x": 5}}))


@pytest.mark.parametrize(
    ("users_value", "reason"),
    [
        (["@bob:example.org"], "not an object"),
        ("junk", "not an object"),
        ({"bob": 5}, "invalid user ID"),
        ({"@bob": 5}, "invalid user ID"),
        ({"#room:example.org": 5}, "invalid user ID"),
        ({BOB: "5"}, "not an integer"),
        ({BOB: True}, "not an integer"),
        ({BOB: 5.0}, "not an integer"),
    ],
)
def test_users_must_map_user_ids_to_integers(version, users_value, reason):
    # Spec v12 10.3 / v10-v11 9.3.
    room = Room.standard(version)
    assert reason in room.reason(change(room, ALICE, users=users_value))


def test_users_may_be_absent_or_historical(version):
    # Spec v12 10.3: absent `users` is no users; historical user IDs are valid user IDs.
    room = Room.standard(version)
    assert room.allows(change(room, ALICE, users=None))
    assert room.allows(change(room, ALICE, users=users(room) | {"@Old Style:example.org": 1}))


# ---- 10.4 (v12): creators are not in `users` ---------------------------------------------------


def test_v12_creators_cannot_be_listed():
    # Spec v12 10.4: the create event's sender and additional_creators may not appear.
    room = Room("12", create_content={"additional_creators": [BOB]})
    room.member(ALICE, "join")
    first = room.event("m.room.power_levels", ALICE, {"users": {ALICE: 100}}, state_key="")
    assert "cannot be listed" in room.reason(first)  # also for the first PL event (10.4 < 10.5)
    room.power_levels({"users": {MOD: 50}})
    assert "cannot be listed" in room.reason(change(room, ALICE, users={BOB: 100}))
    assert room.allows(change(room, ALICE, users={CAROL: 100}))


@pytest.mark.parametrize("version", ["10", "11"])
def test_creator_is_listed_before_v12(version):
    # Spec v10/v11 have no 10.4: the creator's level is their `users` entry.
    room = Room.standard(version)
    assert current(room)["users"][ALICE] == 100
    assert room.allows(change(room, ALICE, users=users(room, alice=90)))


# ---- 10.5: the first power levels event --------------------------------------------------------


def test_first_power_levels_event_is_not_compared(version):
    # Spec v12 10.5 / v10-v11 9.4: no previous power levels -> allow, whatever the values.
    # (Rule 8 still applies: the creator has 100 (v12: infinite) without power levels.)
    room = Room(version)
    room.member(ALICE, "join")
    content = {"users": {BOB: 10_000}, "ban": 10_000, "events": {"m.room.name": 10_000}}
    assert room.allows(room.event("m.room.power_levels", ALICE, content, state_key=""))


def test_first_power_levels_event_needs_state_default(version):
    # Rule 8 with no power levels: state_default is 50, Bob (0) cannot set the first one.
    room = Room(version)
    room.member(ALICE, "join")
    room.join_rule("public")
    room.member(BOB, "join")
    first = room.event("m.room.power_levels", BOB, {"users": {BOB: 0}}, state_key="")
    assert "required" in room.reason(first)


# ---- 10.6: named levels -----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMED)
def test_named_level_changes(version, name):
    # Spec v12 10.6 / v10-v11 9.5: for each added, changed or removed named level both the
    # current and the new value must be at most the sender's level (MOD: 50). (The power
    # levels event's own level is pinned at 50 so that a state_default of 60 leaves rule 8
    # satisfied.)
    room = Room.standard(version, **{name: 40}, events={"m.room.power_levels": 50})
    assert room.allows(change(room, MOD, **{name: 50}))  # new value == sender's level
    assert "to a level above" in room.reason(change(room, MOD, **{name: 51}))
    room.power_levels({**current(room), name: 60})
    assert "from a level above" in room.reason(change(room, MOD, **{name: 10}))
    assert "from a level above" in room.reason(change(room, MOD, **{name: None}))  # removed
    assert room.allows(change(room, ALICE, **{name: 10}))


@pytest.mark.parametrize("name", NAMED)
def test_named_level_added(version, name):
    # Spec v12 10.6: an added key has no current value; only the new value is compared.
    room = Room.standard(version)
    assert name not in current(room)
    assert room.allows(change(room, MOD, **{name: 50}))
    assert not room.allows(change(room, MOD, **{name: 51}))


def test_unchanged_levels_above_the_sender_are_fine(version):
    # Spec v12 10.6: only alterations are checked.
    room = Room.standard(version, ban=100, events={"m.room.tombstone": 100})
    assert room.allows(change(room, MOD, users=users(room, bob=10)))


# ---- 10.7-10.8: events and notifications ---------------------------------------------------------


@pytest.mark.parametrize("name", ["events", "notifications"])
def test_entry_maps(version, name):
    # Spec v12 10.7: entries changed or removed must currently be at most the sender's level;
    # 10.8: entries added or changed must become at most the sender's level.
    room = Room.standard(version, **{name: {"low": 10, "high": 90}})
    assert room.allows(change(room, MOD, **{name: {"low": 50, "high": 90}}))
    assert room.allows(change(room, MOD, **{name: {"high": 90}}))  # removing a low entry
    assert room.allows(change(room, MOD, **{name: {"low": 10, "high": 90, "new": 50}}))
    assert "to a level above" in room.reason(change(room, MOD, **{name: {"low": 51, "high": 90}}))
    assert "to a level above" in room.reason(
        change(room, MOD, **{name: {"low": 10, "high": 90, "new": 51}})
    )
    assert "from a level above" in room.reason(change(room, MOD, **{name: {"low": 10, "high": 5}}))
    assert "from a level above" in room.reason(change(room, MOD, **{name: {"low": 10}}))
    assert "from a level above" in room.reason(change(room, MOD, **{name: None}))
    assert room.allows(change(room, ALICE, **{name: {}}))


def test_notifications_not_checked_before_v6():
    # Spec v6 added `notifications` to rules 9.4/9.5 (`limit_notifications_power_levels`);
    # in v1-v5 anyone able to send power levels may set them freely.
    for version, ok in (("5", True), ("6", False)):
        room = Room.standard(version, notifications={"room": 100})
        assert room.allows(change(room, MOD, notifications={"room": 0})) is ok
        assert room.allows(change(room, MOD, notifications={"room": 100, "x": 99})) is ok


# ---- 10.9-10.10: users ---------------------------------------------------------------------------


def test_users_changes(version):
    room = Room.standard(version)
    room.power_levels({**current(room), "users": users(room, bob=10, carol=50)})
    # 10.10: adding or raising up to the sender's level is fine.
    assert room.allows(change(room, MOD, users=users(room, bob=50)))
    # 10.10: but not above it.
    assert "above the sender's" in room.reason(change(room, MOD, users=users(room, bob=51)))
    # 10.9: lowering or removing a user below the sender is fine.
    assert room.allows(change(room, MOD, users=users(room, bob=0)))
    assert room.allows(change(room, MOD, users=users(room, bob=None)))
    # 10.9: a user at the sender's level (CAROL 50) cannot be changed or removed.
    assert "not below" in room.reason(change(room, MOD, users=users(room, carol=0)))
    assert "not below" in room.reason(change(room, MOD, users=users(room, carol=None)))
    # 10.9 exempts the sender's own entry: MOD may demote herself (or drop the entry).
    assert room.allows(change(room, MOD, users=users(room, mod=10)))
    assert room.allows(change(room, MOD, users=users(room, mod=None)))
    # 10.10 still applies to the sender's own entry: no self-promotion.
    assert "above the sender's" in room.reason(change(room, MOD, users=users(room, mod=51)))


def test_v12_creators_may_change_anything():
    # Spec v12: creators are above every integer, so 10.6-10.10 never stop them; an additional
    # creator likewise. A 100 who is not a creator cannot touch another 100.
    room = Room("12", create_content={"additional_creators": [BOB]})
    room.member(ALICE, "join")
    room.power_levels({"users": {MOD: 100, CAROL: 100}, "ban": 100})
    room.join_rule("public")
    for user in (BOB, MOD, CAROL):
        room.member(user, "join")
    huge = {"users": {MOD: 0, CAROL: 2**40}, "ban": 2**40, "events": {"x": 2**40}}
    assert room.allows(change(room, ALICE, **huge))
    assert room.allows(change(room, BOB, **huge))
    assert not room.allows(change(room, MOD, users={MOD: 100, CAROL: 0}))


# ---- older versions: stringy and floaty values, integer enforcement ---------------------------


@pytest.mark.parametrize("version", ["1", "9"])
def test_stringy_power_levels_are_accepted_and_honoured(version):
    # Spec v1-stringy-power-levels (v1-v9): integer strings in `users` and elsewhere.
    room = Room.standard(version)
    room.power_levels({"users": {ALICE: "100", MOD: " +050 "}, "ban": "60", "kick": "040"})
    # MOD counts as 50: kicks (kick 40) yes, bans (ban 60) no.
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "join")
    assert room.allows(room.member_event(BOB, "leave", sender=MOD))
    assert not room.allows(room.member_event(BOB, "ban", sender=MOD))
    # "050" -> 50 is no change for 10.9, so MOD can rewrite her own entry as an integer.
    assert room.allows(change(room, MOD, users={ALICE: "100", MOD: 50}))
    # A users value that is no integer string is rejected (v1 10.1 / v6-v9 9.1).
    assert "not an integer" in room.reason(change(room, ALICE, users={ALICE: "100", BOB: "1.5"}))


def test_stringy_power_levels_rejected_from_v10():
    # Spec v10: "power levels MUST NOT be represented as strings" (rules 9.1-9.3).
    for version, ok in (("9", True), ("10", False)):
        room = Room.standard(version)
        assert room.allows(change(room, ALICE, ban="50")) is ok
        assert room.allows(change(room, ALICE, events={"m.room.name": "50"})) is ok
        assert room.allows(change(room, ALICE, users=users(room, bob="5"))) is ok


def test_garbage_named_levels_are_not_checked_before_v10():
    # Spec v1-v9 check only `users`; other values are read as their default when unusable.
    room = Room.standard("9")
    assert room.allows(change(room, ALICE, ban="fifty"))
    room.power_levels({**current(room), "ban": "fifty"})
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "join")
    assert room.allows(room.member_event(BOB, "ban", sender=MOD))  # ban level read as 50


def test_floats_accepted_before_v6():
    # Spec v1-floaty-power-levels (v1-v5): floats truncate (50.57 -> 50); v6 enforces
    # canonical JSON, in which floats do not exist, so a float level is no integer.
    for version, ok in (("5", True), ("6", False)):
        room = Room.standard(version)
        assert room.allows(change(room, ALICE, users=users(room, bob=50.57))) is ok
    room = Room.standard("1")
    room.power_levels({"users": {ALICE: 100.9, MOD: 50.57}})
    assert room.allows(change(room, MOD, users={ALICE: 100.9, MOD: 50}))  # 50.57 is 50
