"""Server-name patterns of the federation allow/deny lists: parsing what an operator writes and
matching a server name against it. Pure (no Django).

A pattern is a server name as written in Matrix ids (spec: appendices, "Server Name":
`hostname [":" port]`) or "*." + a DNS name, which covers that name and every subdomain of it,
on any port. A pattern without a port covers the host on any port; one with a port only that
port. DNS names compare case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable

from homeserver.protocol.identifiers import InvalidIdentifier, ServerName


def normalise_pattern(text: str) -> str:
    """The canonical form of a list entry (lower-case, trimmed); ValueError says what is wrong."""
    value = (text or "").strip().lower()
    if not value:
        raise ValueError("Enter a server name such as hospital.example or *.kv.example")
    wildcard = value.startswith("*.")
    name = value[2:] if wildcard else value
    try:
        parsed = ServerName.parse(name)
    except InvalidIdentifier as e:
        raise ValueError(f"Not a server name: {e}") from None
    if wildcard and (parsed.port is not None or name.startswith("[") or "*" in name):
        raise ValueError('A wildcard entry is "*." followed by a DNS name, without a port')
    if "*" in name:
        raise ValueError('"*" is only allowed as the first label: *.example.org')
    return value


def host_of(server: str) -> str:
    """The host part of a server name: "a.example:8448" -> "a.example", "[::1]:8448" -> "[::1]"."""
    if server.startswith("["):
        return server[: server.find("]") + 1] if "]" in server else server
    return server.rsplit(":", 1)[0] if server.count(":") == 1 else server


def matches(server: str, patterns: Iterable[str]) -> bool:
    """Whether `server` is covered by any of `patterns` (see the module docstring)."""
    server = server.lower()
    host = host_of(server)
    for p in patterns:
        p = p.lower()
        if p == server or p == host:
            return True
        if p.startswith("*.") and (host.endswith(p[1:]) or host == p[2:]):
            return True
    return False
