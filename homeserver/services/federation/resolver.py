"""Where to connect for a server name. Spec: server-server API "Resolving server names".

IP literals and explicit ports are used as given; otherwise .well-known/matrix/server
delegation, then SRV (_matrix-fed._tcp, then the deprecated _matrix._tcp), then port 8448.
The result says which host to connect to, which Host header and TLS name to present.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass

import httpx

from homeserver.protocol.identifiers import InvalidIdentifier, ServerName

DEFAULT_PORT = 8448
WELL_KNOWN_CACHE_S = 24 * 3600
WELL_KNOWN_FAILURE_CACHE_S = 3600
_well_known: dict[str, tuple[float, str | None]] = {}


@dataclass(frozen=True, slots=True)
class Target:
    host: str  # what to connect to (hostname or IP)
    port: int
    host_header: str  # Spec: the Host header names the server (or the delegated name)
    tls_name: str | None  # the name the certificate must be valid for (None for IP literals)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def _srv(name: str) -> tuple[str, int] | None:
    try:
        import dns.exception
        import dns.resolver
    except ImportError:  # pragma: no cover - dnspython is a dependency
        return None
    for service in ("_matrix-fed._tcp.", "_matrix._tcp."):
        try:
            answers = dns.resolver.resolve(service + name, "SRV", lifetime=5)
        except dns.exception.DNSException:
            continue
        best = sorted(answers, key=lambda r: (r.priority, -r.weight))[0]
        return str(best.target).rstrip("."), int(best.port)
    return None


def _fetch_well_known(hostname: str, verify: bool | str) -> str | None:
    cached = _well_known.get(hostname)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    delegated = None
    ttl = WELL_KNOWN_FAILURE_CACHE_S
    try:
        r = httpx.get(f"https://{hostname}/.well-known/matrix/server", timeout=10,
                      verify=verify, follow_redirects=True)
        if r.status_code == 200:
            value = r.json().get("m.server")
            if isinstance(value, str):
                ServerName.parse(value)
                delegated, ttl = value, WELL_KNOWN_CACHE_S
    except (httpx.HTTPError, ValueError, InvalidIdentifier):
        pass
    _well_known[hostname] = (time.monotonic() + ttl, delegated)
    return delegated


def resolve(server_name: str, *, verify: bool | str = True) -> Target:
    name = ServerName.parse(server_name)
    host = name.host
    if _is_ip(host):  # Spec step 1: an IP literal, with the given port or 8448.
        return Target(host.strip("[]"), name.port or DEFAULT_PORT, server_name, None)
    if name.port is not None:  # Spec step 2: explicit port.
        return Target(host, name.port, server_name, host)
    delegated = _fetch_well_known(host, verify)  # Spec step 3.
    if delegated is not None:
        d = ServerName.parse(delegated)
        if _is_ip(d.host):
            return Target(d.host.strip("[]"), d.port or DEFAULT_PORT, delegated, None)
        if d.port is not None:
            return Target(d.host, d.port, delegated, d.host)
        srv = _srv(d.host)
        if srv is not None:
            return Target(srv[0], srv[1], d.host, d.host)
        return Target(d.host, DEFAULT_PORT, d.host, d.host)
    srv = _srv(host)  # Spec steps 4-5.
    if srv is not None:
        return Target(srv[0], srv[1], server_name, host)
    return Target(host, DEFAULT_PORT, server_name, host)  # Spec step 6.


def addresses(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def is_private_address(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return (addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast
            or addr.is_reserved or addr.is_unspecified)
