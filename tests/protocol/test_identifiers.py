"""Identifier types against the spec's grammar (appendices, Identifier Grammar; rooms v3/v4/v12)."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from homeserver.protocol.identifiers import (
    EventID,
    InvalidIdentifier,
    RoomAlias,
    RoomID,
    ServerName,
    UserID,
)
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS

V = KNOWN_ROOM_VERSIONS
HASH_URLSAFE = "Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"  # spec rooms v4 example
HASH_STANDARD = "acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk"  # spec rooms v3 example


# --- ServerName -------------------------------------------------------------------------------

# Spec: appendices, Server Name: the listed valid examples (+ a few more), with host and port.
VALID_SERVER_NAMES = [
    ("matrix.org", "matrix.org", None),
    ("matrix.org:8888", "matrix.org", 8888),
    ("1.2.3.4", "1.2.3.4", None),
    ("1.2.3.4:1234", "1.2.3.4", 1234),
    ("[1234:5678::abcd]", "[1234:5678::abcd]", None),
    ("[1234:5678::abcd]:5678", "[1234:5678::abcd]", 5678),
    ("localhost", "localhost", None),
    ("MATRIX.ORG:65535", "MATRIX.ORG", 65535),
    ("[::ffff:1.2.3.4]:1", "[::ffff:1.2.3.4]", 1),
    ("a-b.example.", "a-b.example.", None),
    ("1.2.3", "1.2.3", None),  # not a dotted quad: a (grammar-valid) DNS name
    ("a" * 255, "a" * 255, None),
]


@pytest.mark.parametrize(("text", "host", "port"), VALID_SERVER_NAMES)
def test_server_name_valid(text: str, host: str, port: int | None) -> None:
    name = ServerName.parse(text)
    assert (name.host, name.port) == (host, port)
    assert str(name) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("example.org:", "port"),
        (":8448", "empty"),
        ("example.org:0", "port"),
        ("example.org:65536", "port"),
        ("example.org:08448", "port"),  # would not print back identically
        ("example.org:٣", "port"),  # a non-ASCII digit
        ("example.org:80:80", "port"),
        ("exa_mple.org", "hostname"),
        ("exa mple.org", "hostname"),
        ("example.org\n", "hostname"),
        ("bücher.example", "hostname"),
        ("a" * 256, "hostname"),
        ("[1234::abcd", "unterminated"),
        ("[1234::abcd]x", "after IPv6"),
        ("[::1]:", "port"),
        ("[fe80::1%eth0]", "IPv6"),
        ("[1.2.3.4]", "IPv6"),
        ("[g::1]", "IPv6"),
        ("1.2.3.256", "IPv4"),
        ("01.2.3.4", "IPv4"),
    ],
)
def test_server_name_invalid(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        ServerName.parse(text)


def test_server_name_rejects_non_strings() -> None:
    with pytest.raises(InvalidIdentifier, match="not a string"):
        ServerName.parse(8448)


def test_server_name_ip_literal() -> None:
    assert ServerName.parse("[::1]:8448").ip_literal == ipaddress.IPv6Address("::1")
    assert ServerName.parse("10.0.0.1").ip_literal == ipaddress.IPv4Address("10.0.0.1")
    assert ServerName.parse("example.org").ip_literal is None


def test_server_name_constructor_validates() -> None:
    assert str(ServerName("example.org", 443)) == "example.org:443"
    with pytest.raises(InvalidIdentifier, match="port"):
        ServerName("example.org", 70000)
    with pytest.raises(InvalidIdentifier, match="port"):
        ServerName("example.org", True)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentifier, match="hostname"):
        ServerName("exa_mple.org")


def test_server_name_is_case_sensitive_value_type() -> None:
    # Spec: "Server names must be treated case-sensitively".
    assert ServerName.parse("example.org") == ServerName("example.org")
    assert ServerName.parse("example.org") != ServerName.parse("EXAMPLE.org")
    assert len({ServerName.parse("a.b:1"), ServerName("a.b", 1)}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        ServerName.parse("a.b").port = 1  # type: ignore[misc]


# --- UserID -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "localpart", "server"),
    [
        ("@alice:example.org", "alice", "example.org"),
        ("@a.b_c=d-e/f+g0:matrix.org:8448", "a.b_c=d-e/f+g0", "matrix.org:8448"),
        ("@x:[::1]:80", "x", "[::1]:80"),
    ],
)
def test_user_id_valid(text: str, localpart: str, server: str) -> None:
    user = UserID.parse(text)
    assert user.localpart == localpart
    assert user.server_name == ServerName.parse(server)
    assert str(user) == text
    assert user.is_compliant


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("alice:example.org", "must start with '@'"),
        ("@alice", "missing ':server_name'"),
        ("@Alice:example.org", "localpart must be non-empty and use only"),
        ("@:example.org", "localpart must be non-empty and use only"),
        ("@al ice:example.org", "localpart must be non-empty and use only"),
        ("@al*ce:example.org", "localpart must be non-empty and use only"),
        ("@alice:exa_mple.org", "bad server name"),
        ("@alice:", "bad server name"),
    ],
)
def test_user_id_invalid(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        UserID.parse(text)


def test_user_id_error_names_the_value() -> None:
    with pytest.raises(InvalidIdentifier) as info:
        UserID.parse("@Bob:example.org")
    assert "'@Bob:example.org'" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_user_id_length_limit_is_in_bytes() -> None:
    # Spec: User Identifiers: the whole ID MUST NOT exceed 255 bytes.
    server = "example.org"  # "@" + localpart + ":" + 11 chars
    assert len(str(UserID.parse("@" + "a" * 242 + ":" + server))) == 255
    with pytest.raises(InvalidIdentifier, match="255 bytes"):
        UserID.parse("@" + "a" * 243 + ":" + server)
    # Two-byte characters: 135 characters but 256 bytes is too long; 255 bytes is fine.
    with pytest.raises(InvalidIdentifier, match="255 bytes"):
        UserID.parse_historical("@" + "é" * 121 + "a:" + server)
    assert len(str(UserID.parse_historical("@" + "é" * 121 + ":" + server)).encode()) == 255


@pytest.mark.parametrize(
    ("text", "compliant"),
    [
        ("@Alice:example.org", True),  # upper case: historical but compliant
        ("@a!b~c:example.org", True),
        ("@:example.org", False),  # empty localpart is allowed historically
        ("@élodie:example.org", False),
        ("@a b:example.org", False),
        ("@a\x01b:example.org", False),
    ],
)
def test_user_id_historical(text: str, compliant: bool) -> None:
    # Spec: Historical User IDs: servers MUST accept these over federation.
    with pytest.raises(InvalidIdentifier):
        UserID.parse(text)
    user = UserID.parse_historical(text)
    assert str(user) == text
    assert user.is_compliant is compliant


@pytest.mark.parametrize("text", ["@a\x00b:example.org", "@a\ud800:example.org", "@a:b_c"])
def test_user_id_historical_still_rejects(text: str) -> None:
    with pytest.raises(InvalidIdentifier):
        UserID.parse_historical(text)


def test_is_valid_localpart() -> None:
    assert UserID.is_valid_localpart("a.b_c=d-e/f+g0")
    assert not UserID.is_valid_localpart("")
    assert not UserID.is_valid_localpart("A")
    assert not UserID.is_valid_localpart("a\n")


def test_user_id_constructor_requires_server_name_type() -> None:
    assert str(UserID("bob", ServerName("b.c"))) == "@bob:b.c"
    with pytest.raises(InvalidIdentifier, match="ServerName"):
        UserID("bob", "b.c")  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentifier, match="':'"):
        UserID("bo:b", ServerName("b.c"))


def test_user_id_rejects_non_strings() -> None:
    with pytest.raises(InvalidIdentifier, match="not a string"):
        UserID.parse_historical(None)


# --- RoomID -----------------------------------------------------------------------------------


def test_room_id_with_domain() -> None:
    room = RoomID.parse("!UcYsUzyxTGDxLBEvLy:example.org")
    assert room.opaque == "UcYsUzyxTGDxLBEvLy"
    assert room.server_name == ServerName("example.org")
    assert room.create_event_id is None
    assert str(room) == "!UcYsUzyxTGDxLBEvLy:example.org"
    assert RoomID.parse("!Ω\x01x:example.org:8448").opaque == "Ω\x01x"  # any code point


def test_room_id_v12_has_no_server_name() -> None:
    # Spec: appendices, Room IDs + pdu_v12 example.
    room = RoomID.parse("!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ", V["12"])
    assert room.server_name is None
    assert room.create_event_id == "$Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ"
    assert str(room) == "!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("#a:example.org", "must start with '!'"),
        ("!abc", "43 URL-safe"),
        ("!" + HASH_STANDARD, "43 URL-safe"),  # '/' is not URL-safe
        ("!" + HASH_URLSAFE + "A", "43 URL-safe"),
        ("!:example.org", "non-empty"),
        ("!a\x00:example.org", "NUL"),
        ("!abc:example.org:0", "bad server name"),
        ("!" + "a" * 243 + ":example.org", "255 bytes"),
    ],
)
def test_room_id_invalid(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        RoomID.parse(text)


def test_room_id_form_follows_room_version() -> None:
    with pytest.raises(InvalidIdentifier, match="without a domain"):
        RoomID.parse("!abc:example.org", V["12"])
    with pytest.raises(InvalidIdentifier, match="requires '!opaque:server_name'"):
        RoomID.parse("!" + HASH_URLSAFE, V["11"])
    assert RoomID.parse("!abc:example.org", V["1"]).server_name == ServerName("example.org")


# --- EventID ----------------------------------------------------------------------------------


def test_event_id_forms() -> None:
    v1 = EventID.parse("$0:domain", V["1"])
    assert (v1.opaque, v1.server_name) == ("0", ServerName("domain"))
    v3 = EventID.parse("$" + HASH_STANDARD, V["3"])
    assert (v3.opaque, v3.server_name) == (HASH_STANDARD, None)
    v4 = EventID.parse("$" + HASH_URLSAFE, V["4"])
    assert str(v4) == "$" + HASH_URLSAFE
    # Without a room version either form is accepted.
    assert EventID.parse("$" + HASH_STANDARD).server_name is None
    assert EventID.parse("$abc:example.org").server_name == ServerName("example.org")


@pytest.mark.parametrize(
    ("text", "version", "reason"),
    [
        ("$" + HASH_URLSAFE, "1", "requires '\\$opaque:server_name'"),
        ("$abc:example.org", "3", "requires a hash event ID"),
        ("$abc:example.org", "12", "requires a hash event ID"),
        ("$" + HASH_URLSAFE, "3", "standard Base64"),  # '-' and '_' are not standard
        ("$" + HASH_STANDARD, "4", "URL-safe"),  # '/' is not URL-safe
        ("$" + HASH_STANDARD, "12", "URL-safe"),
        ("$" + HASH_URLSAFE[:-1], None, "43 Base64"),
        ("$" + HASH_URLSAFE[:-1] + "=", None, "43 Base64"),
        ("$:example.org", None, "non-empty"),
        ("!abc:example.org", None, "must start with '\\$'"),
    ],
)
def test_event_id_invalid(text: str, version: str | None, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        EventID.parse(text, V[version] if version else None)


# --- RoomAlias --------------------------------------------------------------------------------


def test_room_alias() -> None:
    alias = RoomAlias.parse("#Sälen room:example.org:8448")
    assert alias.alias == "Sälen room"
    assert alias.server_name == ServerName("example.org", 8448)
    assert str(alias) == "#Sälen room:example.org:8448"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("#:example.org", "non-empty"),
        ("#room", "missing ':server_name'"),
        ("room:example.org", "must start with '#'"),
        ("#ro\x00om:example.org", "NUL"),
        ("#room:exa mple.org", "bad server name"),
        ("#" + "r" * 243 + ":example.org", "255 bytes"),
    ],
)
def test_room_alias_invalid(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        RoomAlias.parse(text)


def test_identifiers_of_different_kinds_never_compare_equal() -> None:
    server = ServerName("example.org")
    assert RoomID("abc", server) != EventID("abc", server)
    assert repr(RoomID("abc", server)) == "RoomID('!abc:example.org')"
