"""Signing keys, signed JSON and signed events against the spec's Cryptographic Test Vectors.

Spec: appendices "Cryptographic Test Vectors", "Signing Details", "Checking for a Signature";
server-server API "Signing Events". `signedjson` (a test-only dependency) serves as an
independent implementation to cross-check interoperability.
"""

from __future__ import annotations

import copy
import io
import re
from typing import Any

import nacl.signing
import pytest
import signedjson.key
import signedjson.sign

from homeserver.protocol.identifiers import ServerName
from homeserver.protocol.redaction import redact_pdu
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.protocol.signing import (
    SignatureError,
    SigningKey,
    decode_signing_key_file,
    encode_signing_key_file,
    generate_signing_key,
    public_key_base64,
    sign_event,
    sign_json,
    verify_event_signature,
    verify_signed_json,
)
from homeserver.protocol.unpadded_base64 import decode_base64

V = KNOWN_ROOM_VERSIONS

# Spec: appendices, Cryptographic Test Vectors, "Signing Key".
SEED_B64 = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
SERVER_NAME = "domain"
KEY_ID = "ed25519:1"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.from_seed("1", decode_base64(SEED_B64))


# --- keys -------------------------------------------------------------------------------------


def test_vector_key_identity(key: SigningKey) -> None:
    assert key.key_id == KEY_ID
    reference = signedjson.key.decode_signing_key_base64("ed25519", "1", SEED_B64)
    expected_public = signedjson.key.encode_verify_key_base64(
        signedjson.key.get_verify_key(reference)
    )
    assert public_key_base64(key) == expected_public
    assert len(key.verify_key_bytes) == 32


def test_repr_never_shows_the_seed(key: SigningKey) -> None:
    text = repr(key)
    assert "ed25519:1" in text
    assert SEED_B64[:20] not in text
    assert public_key_base64(key) in text


def test_key_file_round_trip_of_the_vector_key(key: SigningKey) -> None:
    # Re-encoding canonicalises the last character (the vector's "1" has non-zero spare bits).
    line = encode_signing_key_file(key)
    assert line == "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0\n"
    (decoded,) = decode_signing_key_file(line)
    assert decoded.key_id == KEY_ID
    assert decoded.verify_key_bytes == key.verify_key_bytes
    (from_vector,) = decode_signing_key_file(f"ed25519 1 {SEED_B64}")
    assert from_vector.verify_key_bytes == key.verify_key_bytes


def test_key_file_interoperates_with_synapse_format(key: SigningKey) -> None:
    # Our file is readable by signedjson's reader, and its writer's output is readable by us.
    (theirs,) = signedjson.key.read_signing_keys(io.StringIO(encode_signing_key_file(key)))
    assert theirs.version == "1"
    assert bytes(theirs.verify_key) == key.verify_key_bytes
    buffer = io.StringIO()
    other = signedjson.key.generate_signing_key("a_Bc9")
    signedjson.key.write_signing_keys(buffer, [other, theirs])
    ours = decode_signing_key_file(buffer.getvalue())
    assert [k.key_id for k in ours] == ["ed25519:a_Bc9", "ed25519:1"]
    assert ours[0].verify_key_bytes == bytes(other.verify_key)


def test_key_file_with_several_keys_and_blank_lines() -> None:
    a, b = generate_signing_key("a"), generate_signing_key("b")
    text = "\n" + encode_signing_key_file(a) + "   \n" + encode_signing_key_file(b)
    assert [k.key_id for k in decode_signing_key_file(text)] == ["ed25519:a", "ed25519:b"]
    assert decode_signing_key_file("") == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"ed25519 1 {SEED_B64} extra", "line 1: expected"),
        ("ed25519 1", "line 1: expected"),
        (f"\ncurve25519 1 {SEED_B64}", "line 2: unsupported algorithm"),
        ("ed25519 1 not*base64", "line 1: seed is not valid Base64"),
        ("ed25519 1 YJDBA9Xnr2sVqXD9", "line 1: an ed25519 seed is 32 bytes"),
        (f"ed25519 a-b {SEED_B64}", r"line 1: key version 'a-b' must match"),
    ],
)
def test_key_file_errors_name_the_line_not_the_seed(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        decode_signing_key_file(text)
    assert SEED_B64 not in str(info.value)


def test_generate_signing_key() -> None:
    first, second = generate_signing_key(), generate_signing_key()
    # Spec: server-server keys: the version must use [a-zA-Z0-9_].
    assert re.fullmatch(r"ed25519:[a-zA-Z0-9_]{8}", first.key_id)
    assert first.key_id != second.key_id
    assert first.verify_key_bytes != second.verify_key_bytes
    assert generate_signing_key("a_1").key_id == "ed25519:a_1"
    with pytest.raises(ValueError, match="must match"):
        generate_signing_key("bad-version")


# --- signed JSON ------------------------------------------------------------------------------


def test_spec_vector_empty_object(key: SigningKey) -> None:
    assert sign_json({}, SERVER_NAME, key) == {
        "signatures": {
            "domain": {
                "ed25519:1": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
            }
        }
    }


def test_spec_vector_object_with_data(key: SigningKey) -> None:
    assert sign_json({"one": 1, "two": "Two"}, SERVER_NAME, key) == {
        "one": 1,
        "signatures": {
            "domain": {
                "ed25519:1": "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
            }
        },
        "two": "Two",
    }


def test_sign_json_keeps_unsigned_and_merges_existing_signatures(key: SigningKey) -> None:
    obj = {
        "one": 1,
        "two": "Two",
        "unsigned": {"age_ts": 922834800000},
        "signatures": {"other.org": {"ed25519:x": "s1"}, "domain": {"ed25519:0": "old"}},
    }
    before = copy.deepcopy(obj)
    signed = sign_json(obj, ServerName("domain"), key)
    assert obj == before  # input untouched, including its nested signatures
    assert signed == {
        "one": 1,
        "two": "Two",
        "unsigned": {"age_ts": 922834800000},
        "signatures": {
            "other.org": {"ed25519:x": "s1"},
            "domain": {
                "ed25519:0": "old",
                # Neither `unsigned` nor existing signatures are covered: same as the vector.
                "ed25519:1": "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw",
            },
        },
    }


def test_sign_json_rejects_malformed_existing_signatures(key: SigningKey) -> None:
    with pytest.raises(ValueError, match="signatures"):
        sign_json({"signatures": {"domain": "x"}}, SERVER_NAME, key)


def test_verify_spec_vector_and_its_alteration(key: SigningKey) -> None:
    signed = sign_json({"one": 1, "two": "Two"}, SERVER_NAME, key)
    verify_signed_json(signed, SERVER_NAME, KEY_ID, key.verify_key_bytes)
    verify_signed_json(
        {**signed, "unsigned": {"added": "later"}}, SERVER_NAME, KEY_ID, key.verify_key_bytes
    )
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signed_json({**signed, "two": "Three"}, SERVER_NAME, KEY_ID, key.verify_key_bytes)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signed_json({**signed, "three": 3}, SERVER_NAME, KEY_ID, key.verify_key_bytes)


def _vector_signed(key: SigningKey) -> dict[str, Any]:
    return sign_json({"one": 1, "two": "Two"}, SERVER_NAME, key)


@pytest.mark.parametrize(
    ("mutate", "server", "key_id", "reason"),
    [
        (lambda s: s, "other.org", KEY_ID, "no signatures from 'other.org'"),
        (lambda s: s, SERVER_NAME, "ed25519:2", "no signature from 'domain' with key"),
        (lambda s: s, SERVER_NAME, "curve25519:1", "unsupported signing algorithm"),
        (lambda s: {**s, "signatures": []}, SERVER_NAME, KEY_ID, "no signatures"),
        (
            lambda s: {**s, "signatures": {"domain": {"ed25519:1": "!!"}}},
            SERVER_NAME,
            KEY_ID,
            "not Base64",
        ),
        (
            lambda s: {**s, "signatures": {"domain": {"ed25519:1": "AAAA"}}},
            SERVER_NAME,
            KEY_ID,
            "not 64 bytes",
        ),
        (
            lambda s: {k: v for k, v in s.items() if k != "signatures"},
            SERVER_NAME,
            KEY_ID,
            "no signatures",
        ),
    ],
)
def test_verify_failures(
    key: SigningKey, mutate: Any, server: str, key_id: str, reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify_signed_json(mutate(_vector_signed(key)), server, key_id, key.verify_key_bytes)


def test_verify_with_wrong_or_malformed_key(key: SigningKey) -> None:
    signed = _vector_signed(key)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signed_json(signed, SERVER_NAME, KEY_ID, generate_signing_key().verify_key_bytes)
    with pytest.raises(SignatureError, match="not an ed25519 key"):
        verify_signed_json(signed, SERVER_NAME, KEY_ID, b"short")
    # A nacl VerifyKey object is accepted as well as raw bytes.
    verify_signed_json(signed, SERVER_NAME, KEY_ID, nacl.signing.VerifyKey(key.verify_key_bytes))


def test_signature_error_is_a_value_error() -> None:
    assert issubclass(SignatureError, ValueError)


def test_interoperates_with_signedjson(key: SigningKey) -> None:
    reference = signedjson.key.decode_signing_key_base64("ed25519", "1", SEED_B64)
    obj = {"b": [1, {"ü": None}], "a": True, "unsigned": {"x": 1}}
    ours = sign_json(obj, SERVER_NAME, key)
    signedjson.sign.verify_signed_json(ours, SERVER_NAME, signedjson.key.get_verify_key(reference))
    theirs = signedjson.sign.sign_json(copy.deepcopy(obj), SERVER_NAME, reference)
    assert theirs == ours
    verify_signed_json(theirs, SERVER_NAME, KEY_ID, key.verify_key_bytes)


# --- signed events ----------------------------------------------------------------------------

# Spec: appendices, Event Signing: inputs and the exact signed outputs.
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
MINIMAL_EVENT_SIGNED = {
    "auth_events": [],
    "content": {},
    "depth": 3,
    "hashes": {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
    "origin": "domain",
    "origin_server_ts": 1000000,
    "prev_events": [],
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
        }
    },
    "type": "X",
    "unsigned": {"age_ts": 1000000},
}
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
REDACTABLE_EVENT_SIGNED = {
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
PRE_V11 = [v for v in V if int(v) < 11]


@pytest.mark.parametrize("version", PRE_V11)
@pytest.mark.parametrize(
    ("event", "expected"),
    [(MINIMAL_EVENT, MINIMAL_EVENT_SIGNED), (REDACTABLE_EVENT, REDACTABLE_EVENT_SIGNED)],
    ids=["minimal", "redactable"],
)
def test_event_signing_spec_vectors(
    key: SigningKey, version: str, event: dict, expected: dict
) -> None:
    # The vectors keep top-level `origin`, i.e. they use the redaction rules before v11.
    before = copy.deepcopy(event)
    assert sign_event(event, V[version], SERVER_NAME, key) == expected
    assert event == before
    verify_event_signature(expected, V[version], SERVER_NAME, KEY_ID, key.verify_key_bytes)


def test_v11_signature_does_not_cover_origin(key: SigningKey) -> None:
    signed = sign_event(MINIMAL_EVENT, V["11"], SERVER_NAME, key)
    assert signed["hashes"] == MINIMAL_EVENT_SIGNED["hashes"]
    assert signed["signatures"] != MINIMAL_EVENT_SIGNED["signatures"]
    verify_event_signature(
        {**signed, "origin": "spoofed"}, V["11"], SERVER_NAME, KEY_ID, key.verify_key_bytes
    )
    with pytest.raises(SignatureError):
        verify_event_signature(
            MINIMAL_EVENT_SIGNED, V["11"], SERVER_NAME, KEY_ID, key.verify_key_bytes
        )


def test_event_signature_survives_redaction_but_not_tampering(key: SigningKey) -> None:
    room_version = V["1"]
    verify = verify_event_signature
    # A redacted copy still verifies: the signature covers only the redacted form.
    redacted = redact_pdu(REDACTABLE_EVENT_SIGNED, room_version)
    verify(redacted, room_version, SERVER_NAME, KEY_ID, key.verify_key_bytes)
    # Changing the message body is not a signature failure (the content hash catches it)...
    edited = {**REDACTABLE_EVENT_SIGNED, "content": {"body": "edited"}}
    verify(edited, room_version, SERVER_NAME, KEY_ID, key.verify_key_bytes)
    # ...but changing an essential field is.
    with pytest.raises(SignatureError, match="does not verify"):
        verify(
            {**REDACTABLE_EVENT_SIGNED, "origin_server_ts": 1},
            room_version,
            SERVER_NAME,
            KEY_ID,
            key.verify_key_bytes,
        )
    with pytest.raises(SignatureError, match="does not verify"):
        verify(
            {**REDACTABLE_EVENT_SIGNED, "hashes": {"sha256": "x"}},
            room_version,
            SERVER_NAME,
            KEY_ID,
            key.verify_key_bytes,
        )


def test_sign_event_adds_to_existing_signatures(key: SigningKey) -> None:
    event = {**MINIMAL_EVENT, "signatures": {"other.org": {"ed25519:z": "sig"}}}
    signed = sign_event(event, V["10"], SERVER_NAME, key)
    assert signed["signatures"] == {
        "other.org": {"ed25519:z": "sig"},
        **MINIMAL_EVENT_SIGNED["signatures"],
    }
