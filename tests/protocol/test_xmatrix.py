"""X-Matrix request authentication (spec: server-server API "Request Authentication")."""

from __future__ import annotations

import pytest

from homeserver.protocol.signing import SigningKey
from homeserver.protocol.unpadded_base64 import decode_base64
from homeserver.protocol.xmatrix import (
    XMatrixError,
    authorization_header,
    parse_authorization,
    verify_request,
)

# The spec appendix test key (seed YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1).
KEY = SigningKey.from_seed("1", decode_base64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"))


def test_sign_then_verify_round_trip():
    h = authorization_header("PUT", "/_matrix/federation/v1/send/1?x=1", "a.example",
                             "b.example", {"pdus": []}, KEY)
    auth = parse_authorization(h)
    assert (auth.origin, auth.destination, auth.key_id) == ("a.example", "b.example",
                                                             "ed25519:1")
    verify_request(auth, "PUT", "/_matrix/federation/v1/send/1?x=1", "b.example",
                   {"pdus": []}, KEY.verify_key_bytes)


@pytest.mark.parametrize("change", ["method", "uri", "content", "destination"])
def test_any_change_breaks_the_signature(change):
    h = authorization_header("PUT", "/p", "a.example", "b.example", {"x": 1}, KEY)
    args = {"method": "PUT", "uri": "/p", "destination": "b.example", "content": {"x": 1}}
    args[change] = {"method": "POST", "uri": "/q", "content": {"x": 2},
                    "destination": "c.example"}[change]
    with pytest.raises(XMatrixError):
        verify_request(parse_authorization(h), args["method"], args["uri"],
                       args["destination"], args["content"], KEY.verify_key_bytes)


def test_parses_liberal_forms():
    # Spec: names case-insensitive, any order, spaces around commas, bare tokens, colons in
    # bare values, backslash escapes in quoted values, unknown params ignored.
    auth = parse_authorization(
        'X-Matrix  Key="ed25519:k" , SIG=abc ,origin=host.example:8448,'
        'destination="d\\.example",extra="z"')
    assert auth.origin == "host.example:8448"
    assert auth.destination == "d.example"
    assert (auth.key_id, auth.signature) == ("ed25519:k", "abc")


def test_missing_destination_is_accepted_for_old_servers():
    auth = parse_authorization('X-Matrix origin="a",key="ed25519:1",sig="s"')
    assert auth.destination is None


@pytest.mark.parametrize("header", [
    "Bearer abc",
    "X-Matrix",
    'X-Matrix origin="a",key="ed25519:1"',
    'X-Matrix origin="a" key="k"',
])
def test_malformed_headers(header):
    with pytest.raises(XMatrixError):
        parse_authorization(header)
