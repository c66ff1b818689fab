"""The redaction algorithm per room version (rooms/fragments v1, v6, v9, v11 redactions)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from homeserver.protocol.redaction import redact_pdu
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS

V = KNOWN_ROOM_VERSIONS
ALL_VERSIONS = sorted(V, key=int)
PRE_V11 = [v for v in ALL_VERSIONS if int(v) < 11]
V11_PLUS = [v for v in ALL_VERSIONS if int(v) >= 11]


def _event(event_type: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {
        "type": event_type,
        "room_id": "!r:example.org",
        "sender": "@u:example.org",
        "content": content,
        "origin_server_ts": 1,
        **extra,
    }


# Every top-level key a PDU has ever carried, plus junk.
KITCHEN_SINK = {
    "event_id": "$e:example.org",
    "type": "m.room.message",
    "room_id": "!r:example.org",
    "sender": "@u:example.org",
    "state_key": "",
    "content": {"body": "hi"},
    "hashes": {"sha256": "abc"},
    "signatures": {"example.org": {"ed25519:1": "sig"}},
    "depth": 5,
    "prev_events": ["$p"],
    "prev_state": [],
    "auth_events": ["$a"],
    "origin": "example.org",
    "origin_server_ts": 1234,
    "membership": "join",
    "unsigned": {"age": 10},
    "age_ts": 99,
    "redacts": "$x",
    "custom": {"x": 1},
}


@pytest.mark.parametrize("version", PRE_V11)
def test_top_level_keys_v1_to_v10(version: str) -> None:
    # Spec: v1/v6/v9-redactions: the kept top-level list is identical in these versions.
    assert redact_pdu(KITCHEN_SINK, V[version]) == {
        "event_id": "$e:example.org",
        "type": "m.room.message",
        "room_id": "!r:example.org",
        "sender": "@u:example.org",
        "state_key": "",
        "content": {},
        "hashes": {"sha256": "abc"},
        "signatures": {"example.org": {"ed25519:1": "sig"}},
        "depth": 5,
        "prev_events": ["$p"],
        "prev_state": [],
        "auth_events": ["$a"],
        "origin": "example.org",
        "origin_server_ts": 1234,
        "membership": "join",
    }


@pytest.mark.parametrize("version", V11_PLUS)
def test_top_level_keys_v11_plus(version: str) -> None:
    # Spec: rooms v11: origin, membership and prev_state are no longer protected.
    assert redact_pdu(KITCHEN_SINK, V[version]) == {
        "event_id": "$e:example.org",
        "type": "m.room.message",
        "room_id": "!r:example.org",
        "sender": "@u:example.org",
        "state_key": "",
        "content": {},
        "hashes": {"sha256": "abc"},
        "signatures": {"example.org": {"ed25519:1": "sig"}},
        "depth": 5,
        "prev_events": ["$p"],
        "auth_events": ["$a"],
        "origin_server_ts": 1234,
    }


MEMBER = {
    "membership": "join",
    "displayname": "U",
    "avatar_url": "mxc://x/y",
    "join_authorised_via_users_server": "@admin:example.org",
    "third_party_invite": {"display_name": "u", "signed": {"mxid": "@u:example.org", "token": "t"}},
}
CREATE = {"creator": "@u:example.org", "room_version": "9", "m.federate": False, "predecessor": {}}
JOIN_RULES = {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}], "x": 1}
POWER_LEVELS = {
    "ban": 50,
    "events": {"m.room.name": 100},
    "events_default": 0,
    "invite": 0,
    "kick": 50,
    "redact": 50,
    "state_default": 50,
    "users": {"@u:example.org": 100},
    "users_default": 0,
    "notifications": {"room": 50},
    "extra": True,
}
POWER_LEVELS_V1 = {
    k: v for k, v in POWER_LEVELS.items() if k not in ("invite", "notifications", "extra")
}
POWER_LEVELS_V11 = {**POWER_LEVELS_V1, "invite": 0}

# (event type, content, {version: expected content}); versions cover every rule boundary.
CONTENT_CASES = [
    (
        "m.room.member",
        MEMBER,
        {
            "1": {"membership": "join"},
            "8": {"membership": "join"},
            "9": {"membership": "join", "join_authorised_via_users_server": "@admin:example.org"},
            "10": {"membership": "join", "join_authorised_via_users_server": "@admin:example.org"},
            "11": {
                "membership": "join",
                "join_authorised_via_users_server": "@admin:example.org",
                "third_party_invite": {"signed": {"mxid": "@u:example.org", "token": "t"}},
            },
            "12": {
                "membership": "join",
                "join_authorised_via_users_server": "@admin:example.org",
                "third_party_invite": {"signed": {"mxid": "@u:example.org", "token": "t"}},
            },
        },
    ),
    (
        "m.room.member",
        {"membership": "invite", "third_party_invite": {"display_name": "no signed key"}},
        {"10": {"membership": "invite"}, "11": {"membership": "invite"}},
    ),
    (
        "m.room.create",
        CREATE,
        {
            "1": {"creator": "@u:example.org"},
            "10": {"creator": "@u:example.org"},
            "11": CREATE,
            "12": CREATE,
        },
    ),
    (
        "m.room.join_rules",
        JOIN_RULES,
        {
            "1": {"join_rule": "restricted"},
            "8": {"join_rule": "restricted"},
            "9": {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}]},
            "11": {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}]},
        },
    ),
    (
        "m.room.power_levels",
        POWER_LEVELS,
        {
            "1": POWER_LEVELS_V1,
            "10": POWER_LEVELS_V1,
            "11": POWER_LEVELS_V11,
            "12": POWER_LEVELS_V11,
        },
    ),
    (
        "m.room.aliases",
        {"aliases": ["#a:example.org"], "x": 1},
        {"1": {"aliases": ["#a:example.org"]}, "5": {"aliases": ["#a:example.org"]}, "6": {}},
    ),
    (
        "m.room.history_visibility",
        {"history_visibility": "shared", "x": 1},
        {v: {"history_visibility": "shared"} for v in ("1", "6", "9", "11")},
    ),
    (
        "m.room.redaction",
        {"redacts": "$victim", "reason": "spam"},
        {"1": {}, "10": {}, "11": {"redacts": "$victim"}, "12": {"redacts": "$victim"}},
    ),
    (
        "m.room.message",
        {"msgtype": "m.text", "body": "secret"},
        {v: {} for v in ALL_VERSIONS},
    ),
    (
        "m.room.encryption",
        {"algorithm": "m.megolm.v1.aes-sha2"},
        {v: {} for v in ALL_VERSIONS},
    ),
    (
        "m.room.topic",  # a state event type without special rules
        {"topic": "t"},
        {"1": {}, "11": {}},
    ),
]


@pytest.mark.parametrize(
    ("event_type", "content", "version", "expected"),
    [
        pytest.param(t, c, v, e, id=f"{t}-v{v}-{i}")
        for i, (t, c, by_version) in enumerate(CONTENT_CASES)
        for v, e in by_version.items()
    ],
)
def test_content_rules(event_type: str, content: Any, version: str, expected: Any) -> None:
    redacted = redact_pdu(_event(event_type, content, state_key=""), V[version])
    assert redacted["content"] == expected


def test_v1_to_v10_drop_top_level_redacts_and_v11_keeps_it_in_content() -> None:
    event = _event("m.room.redaction", {"redacts": "$v"}, redacts="$v")
    assert "redacts" not in redact_pdu(event, V["10"])
    assert redact_pdu(event, V["10"])["content"] == {}
    assert "redacts" not in redact_pdu(event, V["11"])
    assert redact_pdu(event, V["11"])["content"] == {"redacts": "$v"}


def test_appendix_event_signing_vector_redacted_form() -> None:
    # Spec: appendices, Event Signing, second vector (with the content hash it carries): the
    # redacted form that the signature covers in rooms v1-v10.
    signed_event = {
        "content": {"body": "Here is the message content"},
        "event_id": "$0:domain",
        "hashes": {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},
        "origin": "domain",
        "origin_server_ts": 1000000,
        "type": "m.room.message",
        "room_id": "!r:domain",
        "sender": "@u:domain",
        "signatures": {
            "domain": {
                "ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
            }
        },
        "unsigned": {"age_ts": 1000000},
    }
    redacted = redact_pdu(signed_event, V["1"])
    assert redacted == {
        "content": {},
        "event_id": "$0:domain",
        "hashes": {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},
        "origin": "domain",
        "origin_server_ts": 1000000,
        "type": "m.room.message",
        "room_id": "!r:domain",
        "sender": "@u:domain",
        "signatures": signed_event["signatures"],
    }


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_input_is_never_modified(version: str) -> None:
    for event_type, content, _ in CONTENT_CASES:
        event = {**KITCHEN_SINK, "type": event_type, "content": content}
        before = copy.deepcopy(event)
        redacted = redact_pdu(event, V[version])
        assert event == before
        assert redacted is not event
        assert redacted["content"] is not event["content"]


def test_v11_create_content_is_a_copy() -> None:
    event = _event("m.room.create", {"room_version": "11"}, state_key="")
    redacted = redact_pdu(event, V["11"])
    redacted["content"]["x"] = 1
    assert event["content"] == {"room_version": "11"}


def test_redacting_twice_changes_nothing() -> None:
    for version in ALL_VERSIONS:
        once = redact_pdu(KITCHEN_SINK | {"type": "m.room.member", "content": MEMBER}, V[version])
        assert redact_pdu(once, V[version]) == once


@pytest.mark.parametrize("content", ["text", ["membership"], 5, None])
def test_non_object_content_becomes_empty(content: Any) -> None:
    assert redact_pdu(_event("m.room.member", content), V["10"])["content"] == {}


def test_missing_content_stays_missing_and_odd_types_are_tolerated() -> None:
    assert "content" not in redact_pdu({"type": "m.room.message", "depth": 1}, V["10"])
    weird = {"type": ["m.room.member"], "content": {"membership": "join"}}
    assert redact_pdu(weird, V["11"]) == {"type": ["m.room.member"], "content": {}}
