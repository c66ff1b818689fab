"""Scope tokens. Spec: client-server API "Scope": `urn:matrix:client:api:*` (full access) and
exactly one `urn:matrix:client:device:<device_id>`; the MSC2967 unstable spellings
(`urn:matrix:org.matrix.msc2967.client:...`) that current client libraries still send are
accepted as synonyms; `openid` adds an ID token. Pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass

API = ("urn:matrix:client:api:*", "urn:matrix:org.matrix.msc2967.client:api:*")
DEVICE_PREFIXES = ("urn:matrix:client:device:", "urn:matrix:org.matrix.msc2967.client:device:")
OPENID = "openid"
SCOPES_SUPPORTED = (OPENID, API[0], DEVICE_PREFIXES[0] + "*")
# Spec "Device ID allocation": the server MAY refuse ids that are too short or use characters
# outside RFC 3986's unreserved set.
_DEVICE_ID = re.compile(r"[A-Za-z0-9._~-]{5,255}")


class ScopeError(ValueError):
    pass


@dataclass(frozen=True)
class Scope:
    tokens: tuple[str, ...]
    device_id: str
    openid: bool

    def __str__(self) -> str:
        return " ".join(self.tokens)


def parse_scope(text: str) -> Scope:
    tokens = tuple(dict.fromkeys(t for t in text.split(" ") if t))
    devices = [t for t in tokens if t.startswith(DEVICE_PREFIXES)]
    unknown = [t for t in tokens if t not in API and t != OPENID and t not in devices]
    if unknown:
        raise ScopeError(f"unsupported scope {unknown[0]!r}")
    if not any(t in API for t in tokens):
        raise ScopeError("the scope must include urn:matrix:client:api:*")
    if len(devices) != 1:
        raise ScopeError("the scope must include exactly one urn:matrix:client:device:<id>")
    device_id = next(devices[0][len(p):] for p in DEVICE_PREFIXES if devices[0].startswith(p))
    if not _DEVICE_ID.fullmatch(device_id):
        raise ScopeError("device ids must be 5-255 characters from A-Z a-z 0-9 - . _ ~")
    return Scope(tokens, device_id, OPENID in tokens)
