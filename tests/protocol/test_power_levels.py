"""power_levels.py: defaults, value parsing per room version, a user's level, required levels."""

from __future__ import annotations

import math

import pytest

from homeserver.protocol.power_levels import (
    INFINITE_POWER_LEVEL,
    NAMED_LEVEL_DEFAULTS,
    named_level,
    notification_level,
    parse_power_level,
    required_level_for_event,
    room_creators,
    user_power_level,
    validate_power_level,
)
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from tests.protocol.factory import make_event

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
CAROL = "@carol:example.org"
RV = KNOWN_ROOM_VERSIONS


def create(version: str, sender: str = ALICE, **content):
    rv = RV[version]
    if not rv.implicit_room_creator:
        content.setdefault("creator", sender)
    return make_event(
        "$create",
        "m.room.create",
        sender,
        content,
        state_key="",
        room_id=None if rv.room_id_from_create_event else "!r:example.org",
        room_version=version,
    )


def pl(version: str, **content):
    return make_event(
        "$pl", "m.room.power_levels", ALICE, content, state_key="", room_version=version
    )


# ---- defaults ---------------------------------------------------------------------------------


def test_named_defaults_follow_the_spec():
    # Spec server-server "Definitions" and m.room.power_levels: invite 0; kick, ban, redact 50;
    # users_default and events_default 0; state_default 50 -- with or without a PL event
    # (matrix-spec#1479 removed the old "0 without a power levels event" text).
    assert NAMED_LEVEL_DEFAULTS == {
        "users_default": 0,
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
    }
    for name, default in NAMED_LEVEL_DEFAULTS.items():
        assert named_level(None, name) == default  # no PL event
        assert named_level({}, name) == default  # PL event without the key


def test_required_level_defaults_without_and_with_power_levels_event():
    # Spec "Required Power Level": events[type], else state_default (50) / events_default (0).
    assert required_level_for_event("m.room.name", True, None) == 50
    assert required_level_for_event("m.room.message", False, None) == 0
    assert required_level_for_event("m.room.name", True, {}) == 50
    content = {"events": {"m.room.name": 10, "m.room.message": 20}, "state_default": 70}
    assert required_level_for_event("m.room.name", True, content) == 10
    assert required_level_for_event("m.room.message", False, content) == 20
    assert required_level_for_event("m.room.topic", True, content) == 70
    assert required_level_for_event("m.reaction", False, {"events_default": 5}) == 5


def test_required_level_reads_stringy_values_and_ignores_garbage():
    # Spec v1-stringy-power-levels: accepted events of v1-v9 may carry "100"; a value that is
    # no power level at all (only possible where the rules never checked it) is absent.
    assert required_level_for_event("m.room.name", True, {"events": {"m.room.name": "75"}}) == 75
    assert required_level_for_event("m.room.name", True, {"events": {"m.room.name": "x"}}) == 50
    assert required_level_for_event("m.room.name", True, {"events": ["m.room.name"]}) == 50


def test_notification_level_defaults_to_50():
    # Spec m.room.power_levels: notifications.room defaults to 50.
    assert notification_level(None) == 50
    assert notification_level({"notifications": {}}) == 50
    assert notification_level({"notifications": {"room": 20}}) == 20
    assert notification_level({"notifications": {"room": "30"}}) == 30


# ---- parsing and validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Spec v1-stringy-power-levels: base 10, leading zeroes, one sign, surrounding spaces.
        ("100", 100),
        ("000100", 100),
        ("+100", 100),
        ("-100", -100),
        (" 100 ", 100),
        (" 00100 ", 100),
        (" +100 ", 100),
        ("\t-7\n", -7),
        # Not integers: decimals, exponents, two signs, underscores (int() would take those),
        # non-ASCII digits, empty strings.
        ("1.5", None),
        ("1e3", None),
        ("+-1", None),
        ("1_000", None),
        ("\u0661\u0660", None),
        ("", None),
        ("  ", None),
        # Spec v1-floaty-power-levels: floats truncate at the decimal point.
        (50.57, 50),
        (5.114698e4, 51146),
        (-5.7, -5),
        (math.inf, None),
        (math.nan, None),
        # Booleans are JSON true/false, never power levels.
        (True, None),
        (None, None),
        ([1], None),
    ],
)
def test_parse_power_level(raw, expected):
    assert parse_power_level(raw) == expected


@pytest.mark.parametrize(
    ("version", "raw", "expected"),
    [
        # Spec v1-v5: integers, integer strings and floats (v1-stringy/floaty fragments).
        ("1", 50, 50),
        ("1", " 050 ", 50),
        ("5", 50.9, 50),
        ("1", math.inf, None),
        # Spec v6-v9 (strict_canonicaljson): no floats any more, strings still accepted.
        ("6", 50.0, None),
        ("9", "50", 50),
        # Spec v10+ (enforce_int_power_levels): integers only.
        ("10", "50", None),
        ("10", 50.0, None),
        ("11", 50, 50),
        ("12", "50", None),
        # Never booleans.
        ("1", True, None),
        ("12", False, None),
    ],
)
def test_validate_power_level_per_room_version(version, raw, expected):
    assert validate_power_level(raw, RV[version]) == expected


# ---- a user's power level ---------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "9", "10", "11"])
def test_users_entry_then_users_default(version):
    # Spec m.room.power_levels: users[user], else users_default.
    event = pl(version, users={BOB: 42}, users_default=7)
    assert user_power_level(BOB, event, create(version), RV[version]) == 42
    assert user_power_level(CAROL, event, create(version), RV[version]) == 7
    # With a PL event the creator has no special level before v12.
    assert user_power_level(ALICE, event, create(version), RV[version]) == 7


def test_users_default_defaults_to_zero():
    assert user_power_level(BOB, pl("10", users={}), create("10"), RV["10"]) == 0


def test_stringy_levels_are_read_in_old_versions():
    # Spec v1-stringy-power-levels: `users` values and users_default may be strings.
    event = pl("1", users={BOB: "50"}, users_default=" 5 ")
    assert user_power_level(BOB, event, create("1"), RV["1"]) == 50
    assert user_power_level(CAROL, event, create("1"), RV["1"]) == 5


@pytest.mark.parametrize("version", ["1", "10"])
def test_without_power_levels_the_creator_content_field_has_100(version):
    # Spec m.room.power_levels users_default note, v1-v10: without a PL event the creator
    # (`content.creator`, not necessarily the sender) has 100, everyone else 0.
    c = create(version, ALICE, creator=BOB)
    assert user_power_level(BOB, None, c, RV[version]) == 100
    assert user_power_level(ALICE, None, c, RV[version]) == 0


def test_without_power_levels_v11_creator_is_the_sender():
    # Spec rooms v11 (implicit_room_creator): the creator is the create event's sender; a
    # leftover `creator` field means nothing.
    c = create("11", ALICE, creator=BOB)
    assert user_power_level(ALICE, None, c, RV["11"]) == 100
    assert user_power_level(BOB, None, c, RV["11"]) == 0


def test_without_create_event_nobody_is_creator():
    assert user_power_level(ALICE, None, None, RV["10"]) == 0
    assert user_power_level(ALICE, None, None, RV["12"]) == 0


def test_v12_creators_are_infinite_with_and_without_power_levels():
    # Spec rooms v12: creators (sender + additional_creators) have infinite power level,
    # "regardless of the existence of m.room.power_levels"; others get users[...] / 0.
    c = create("12", ALICE, additional_creators=[BOB])
    rv = RV["12"]
    for power_levels in (None, pl("12", users={CAROL: 100}, users_default=10)):
        assert user_power_level(ALICE, power_levels, c, rv) == INFINITE_POWER_LEVEL
        assert user_power_level(BOB, power_levels, c, rv) == INFINITE_POWER_LEVEL
    assert user_power_level(CAROL, None, c, rv) == 0
    assert user_power_level(CAROL, pl("12", users={CAROL: 100}), c, rv) == 100
    # Infinity outranks every integer, which is all the rules need.
    assert INFINITE_POWER_LEVEL > 2**63


def test_v12_creator_entry_in_users_cannot_lower_the_creator():
    # Spec rooms v12: "Room creators cannot be demoted ... even through m.room.power_levels".
    c = create("12", ALICE)
    assert user_power_level(ALICE, pl("12", users={ALICE: 0}), c, RV["12"]) == math.inf


def test_room_creators():
    assert room_creators(create("10", ALICE, creator=BOB), RV["10"]) == [BOB]
    assert room_creators(create("11", ALICE), RV["11"]) == [ALICE]
    c = create("12", ALICE, additional_creators=[BOB, ALICE, CAROL])
    assert room_creators(c, RV["12"]) == [ALICE, BOB, CAROL]
