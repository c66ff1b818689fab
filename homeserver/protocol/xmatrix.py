"""Request authentication between homeservers: the X-Matrix Authorization scheme.

Spec: server-server API "Request Authentication": the method, target (path + query), origin,
destination and JSON body are signed with the JSON signing algorithm; the header carries
origin, destination, key and sig as RFC 9110 auth-params.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from homeserver.protocol.signing import SignatureError, SigningKey, sign_json, verify_signed_json


class XMatrixError(ValueError):
    """The Authorization header is missing, malformed or does not verify."""


@dataclass(frozen=True, slots=True)
class XMatrixAuth:
    origin: str
    destination: str | None
    key_id: str
    signature: str


# Spec: "one or more spaces, followed by a comma-separated list of parameters written as
# name=value pairs"; values quoted (with backslash escapes) or bare tokens, and recipients
# should accept colons in bare values.
_PARAM = re.compile(
    r'\s*([A-Za-z0-9_\-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*(?:,|$)'
)


def parse_authorization(header: str) -> XMatrixAuth:
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "x-matrix" or not rest.strip():
        raise XMatrixError("Authorization scheme is not X-Matrix")
    params: dict[str, str] = {}
    pos, rest = 0, rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None or m.end() == pos:
            raise XMatrixError("Malformed X-Matrix parameters")
        name = m.group(1).lower()
        value = m.group(2) if m.group(2) is not None else m.group(3)
        if m.group(2) is not None:
            value = re.sub(r"\\(.)", r"\1", value)  # Spec: unescape backslash pairs.
        params.setdefault(name, value)  # Unknown parameters are ignored; first one wins.
        pos = m.end()
    try:
        return XMatrixAuth(params["origin"], params.get("destination"), params["key"],
                           params["sig"])
    except KeyError as e:
        raise XMatrixError(f"X-Matrix header lacks {e.args[0]}") from None


def request_json(method: str, uri: str, origin: str, destination: str,
                 content: Any | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"method": method, "uri": uri, "origin": origin,
                           "destination": destination}
    if content is not None:
        obj["content"] = content
    return obj


def authorization_header(method: str, uri: str, origin: str, destination: str,
                         content: Any | None, key: SigningKey) -> str:
    signed = sign_json(request_json(method, uri, origin, destination, content), origin, key)
    sig = signed["signatures"][origin][key.key_id]
    # Spec: for older servers: one space, lower-case names, no whitespace around commas.
    return (f'X-Matrix origin="{origin}",destination="{destination}",'
            f'key="{key.key_id}",sig="{sig}"')


def verify_request(auth: XMatrixAuth, method: str, uri: str, destination: str,
                   content: Any | None, verify_key: bytes) -> None:
    """Raise XMatrixError unless `auth` is a valid signature by auth.origin's key over the
    request. Spec: a destination that is present and not ours is refused."""
    if auth.destination is not None and auth.destination != destination:
        raise XMatrixError("X-Matrix destination is not this server")
    obj = request_json(method, uri, auth.origin, destination, content)
    obj["signatures"] = {auth.origin: {auth.key_id: auth.signature}}
    try:
        verify_signed_json(obj, auth.origin, auth.key_id, verify_key)
    except SignatureError as e:
        raise XMatrixError(f"Bad X-Matrix signature: {e}") from None
