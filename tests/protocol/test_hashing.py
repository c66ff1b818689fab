"""Content hashes, reference hashes, event ids and v12 room ids.

Spec: server-server API "Calculating the content hash" / "Calculating the reference hash";
appendices "Event Signing" vectors; rooms v1/v3/v4 "Event IDs"; rooms v12 room ids.
Expected reference hashes are computed here with hashlib over hand-written canonical JSON, so
the redaction, key stripping and encoding in the code under test are checked independently.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

import pytest

from homeserver.protocol.events import Event
from homeserver.protocol.hashing import (
    add_content_hash,
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
    room_id_for_create_event,
)
from homeserver.protocol.identifiers import EventID, RoomID
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS

V = KNOWN_ROOM_VERSIONS

# Spec: appendices, Event Signing: the two input events and their expected content hashes.
MINIMAL_EVENT = {
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "signatures": {},
    "hashes": {},
    "type": "X",
    "content": {},
    "prev_events": [],
    "auth_events": [],
    "depth": 3,
    "unsigned": {"age_ts": 1000000},
}
MINIMAL_EVENT_HASH = "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
REDACTABLE_EVENT = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {},
    "unsigned": {"age_ts": 1000000},
}
REDACTABLE_EVENT_HASH = "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(
    ("event", "expected"),
    [(MINIMAL_EVENT, MINIMAL_EVENT_HASH), (REDACTABLE_EVENT, REDACTABLE_EVENT_HASH)],
)
def test_content_hash_spec_vectors(event: dict[str, Any], expected: str) -> None:
    assert _b64(compute_content_hash(event)) == expected
    assert add_content_hash(event)["hashes"] == {"sha256": expected}


def test_content_hash_ignores_unsigned_signatures_and_hashes() -> None:
    noisy = {
        **MINIMAL_EVENT,
        "unsigned": {"age": 5, "transaction_id": "t"},
        "signatures": {"other": {"ed25519:x": "y"}},
        "hashes": {"sha256": "stale", "sha512": "future"},
    }
    assert _b64(compute_content_hash(noisy)) == MINIMAL_EVENT_HASH


def test_content_hash_covers_unredacted_content() -> None:
    changed = {**REDACTABLE_EVENT, "content": {"body": "Here is other content"}}
    assert _b64(compute_content_hash(changed)) != REDACTABLE_EVENT_HASH


def test_add_content_hash_returns_a_copy_and_replaces_hashes() -> None:
    event = {**MINIMAL_EVENT, "hashes": {"sha256": "stale", "md5": "old"}}
    before = copy.deepcopy(event)
    hashed = add_content_hash(event)
    assert event == before
    assert hashed == {**before, "hashes": {"sha256": MINIMAL_EVENT_HASH}}


def test_check_content_hash() -> None:
    assert check_content_hash(add_content_hash(REDACTABLE_EVENT))
    # Padded Base64 is accepted on input.
    assert check_content_hash(
        {**REDACTABLE_EVENT, "hashes": {"sha256": REDACTABLE_EVENT_HASH + "="}}
    )
    tampered = {**add_content_hash(REDACTABLE_EVENT), "content": {"body": "tampered"}}
    assert not check_content_hash(tampered)


@pytest.mark.parametrize(
    "hashes",
    [None, "x", {}, {"sha256": 5}, {"sha256": "not base64!"}, {"sha512": REDACTABLE_EVENT_HASH}],
)
def test_check_content_hash_malformed_is_false(hashes: Any) -> None:
    event = dict(REDACTABLE_EVENT)
    if hashes is not None:
        event["hashes"] = hashes
    assert check_content_hash(event) is False


# An event in hash-id form (rooms v3+); its redacted canonical JSON is written out by hand.
HASH_FORM_EVENT = {
    "auth_events": ["$auth"],
    "content": {"body": "not covered by the reference hash", "msgtype": "m.text"},
    "depth": 2,
    "hashes": {"sha256": "h"},
    "origin": "domain",
    "origin_server_ts": 1000000,
    "prev_events": ["$prev"],
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "type": "m.room.message",
    "signatures": {"domain": {"ed25519:1": "sig"}},
    "unsigned": {"age": 4612},
}
REDACTED_V3_TO_V10 = (
    b'{"auth_events":["$auth"],"content":{},"depth":2,"hashes":{"sha256":"h"},'
    b'"origin":"domain","origin_server_ts":1000000,"prev_events":["$prev"],'
    b'"room_id":"!x:domain","sender":"@a:domain","type":"m.room.message"}'
)
REDACTED_V11_PLUS = REDACTED_V3_TO_V10.replace(b'"origin":"domain",', b"")


@pytest.mark.parametrize(
    ("version", "redacted_json"),
    [(v, REDACTED_V3_TO_V10) for v in ("3", "4", "10")]
    + [(v, REDACTED_V11_PLUS) for v in ("11", "12")],
)
def test_reference_hash_is_sha256_of_redacted_canonical_json(
    version: str, redacted_json: bytes
) -> None:
    assert (
        compute_reference_hash(HASH_FORM_EVENT, V[version])
        == hashlib.sha256(redacted_json).digest()
    )


def test_event_id_alphabet_per_event_format() -> None:
    digest = hashlib.sha256(REDACTED_V3_TO_V10).digest()
    # Spec: rooms v3: standard alphabet; rooms v4: URL-safe alphabet.
    assert (
        compute_event_id(HASH_FORM_EVENT, V["3"]) == "$tYTSXYPzZC/mEGdtHHZ/VHTG3aZArKLChpiq+x6zj6s"
    )
    assert compute_event_id(HASH_FORM_EVENT, V["3"]) == "$" + _b64(digest)
    assert (
        compute_event_id(HASH_FORM_EVENT, V["4"]) == "$tYTSXYPzZC_mEGdtHHZ_VHTG3aZArKLChpiq-x6zj6s"
    )
    assert compute_event_id(HASH_FORM_EVENT, V["10"]) == "$" + _b64url(digest)
    assert compute_event_id(HASH_FORM_EVENT, V["11"]) == "$" + _b64url(
        hashlib.sha256(REDACTED_V11_PLUS).digest()
    )


@pytest.mark.parametrize("version", ["3", "4", "6", "9", "10", "11", "12"])
def test_event_ids_parse_as_the_room_versions_event_id_form(version: str) -> None:
    event_id = compute_event_id(HASH_FORM_EVENT, V[version])
    assert str(EventID.parse(event_id, V[version])) == event_id


def test_event_id_ignores_signatures_unsigned_and_redactable_content() -> None:
    base = compute_event_id(HASH_FORM_EVENT, V["10"])
    variant = {
        **HASH_FORM_EVENT,
        "signatures": {"other.org": {"ed25519:2": "more"}},
        "unsigned": {"age": 1, "redacted_because": {}},
        "content": {"body": "edited, hashes not updated"},
    }
    assert compute_event_id(variant, V["10"]) == base
    # ...but the content hash is covered, so a re-hashed edit gets a new id.
    assert compute_event_id({**variant, "hashes": {"sha256": "h2"}}, V["10"]) != base


def test_origin_is_covered_before_v11_only() -> None:
    moved = {**HASH_FORM_EVENT, "origin": "elsewhere"}
    assert compute_event_id(moved, V["10"]) != compute_event_id(HASH_FORM_EVENT, V["10"])
    assert compute_event_id(moved, V["11"]) == compute_event_id(HASH_FORM_EVENT, V["11"])


def test_v1_event_id_is_the_field() -> None:
    assert compute_event_id(REDACTABLE_EVENT, V["1"]) == "$0:domain"
    assert compute_event_id(REDACTABLE_EVENT, V["2"]) == "$0:domain"
    with pytest.raises(ValueError, match="event_id"):
        compute_event_id(HASH_FORM_EVENT, V["1"])


# Rooms v12: a create event has no room_id and keeps all its content when redacted.
CREATE_V12 = {
    "auth_events": [],
    "content": {"room_version": "12", "additional_creators": ["@b:domain"]},
    "depth": 1,
    "hashes": {"sha256": "h"},
    "origin_server_ts": 1000000,
    "prev_events": [],
    "sender": "@a:domain",
    "state_key": "",
    "type": "m.room.create",
    "signatures": {"domain": {"ed25519:1": "sig"}},
}
CREATE_V12_REDACTED = (
    b'{"auth_events":[],"content":{"additional_creators":["@b:domain"],"room_version":"12"},'
    b'"depth":1,"hashes":{"sha256":"h"},"origin_server_ts":1000000,"prev_events":[],'
    b'"sender":"@a:domain","state_key":"","type":"m.room.create"}'
)


def test_room_id_for_v12_create_event() -> None:
    room_id = room_id_for_create_event(CREATE_V12, V["12"])
    assert room_id == "!" + _b64url(hashlib.sha256(CREATE_V12_REDACTED).digest())
    # Spec: appendices, Room IDs: the create event's id with '!' instead of '$'.
    event_id = compute_event_id(CREATE_V12, V["12"])
    assert room_id == "!" + event_id[1:]
    assert RoomID.parse(room_id, V["12"]).create_event_id == event_id
    # The existing Event type derives the same room id for a create event without room_id.
    assert Event(event_id=event_id, room_version=V["12"], pdu=CREATE_V12).room_id == room_id


def test_room_id_depends_on_all_create_content() -> None:
    other = {**CREATE_V12, "content": {"room_version": "12", "additional_creators": []}}
    assert room_id_for_create_event(other, V["12"]) != room_id_for_create_event(CREATE_V12, V["12"])


@pytest.mark.parametrize(
    ("event", "version", "reason"),
    [
        (CREATE_V12, "11", "does not derive room ids"),
        ({**CREATE_V12, "type": "m.room.member"}, "12", "m.room.create"),
        ({**CREATE_V12, "room_id": "!x:domain"}, "12", "must not have a room_id"),
    ],
)
def test_room_id_for_create_event_refuses(event: dict[str, Any], version: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        room_id_for_create_event(event, V[version])


def test_hashing_does_not_modify_input() -> None:
    before = copy.deepcopy(HASH_FORM_EVENT)
    for version in ("1", "3", "11"):
        compute_reference_hash(HASH_FORM_EVENT, V[version])
    compute_content_hash(HASH_FORM_EVENT)
    check_content_hash(HASH_FORM_EVENT)
    assert before == HASH_FORM_EVENT
