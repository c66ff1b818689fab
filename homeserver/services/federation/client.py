"""Outbound federation requests: resolve, refuse what policy or the SSRF guard forbids, sign
with X-Matrix, send over TLS. Spec: server-server API "Request Authentication", "Resolving
server names"; REQUIREMENTS.md A_25534 (never contact a server that is not allowed)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import orjson
from asgiref.sync import sync_to_async
from django.conf import settings

from compliance.federation_access import decide
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.xmatrix import authorization_header
from homeserver.services.federation import resolver
from homeserver.services.signing_keys import server_signing_key


class FederationError(Exception):
    def __init__(self, destination: str, message: str, status: int | None = None,
                 body: Any = None) -> None:
        super().__init__(f"{destination}: {message}")
        self.destination = destination
        self.status = status
        self.body = body


def _verify() -> bool | str:
    cfg = settings.PALISADE.federation
    if not cfg.verify_tls:
        return False
    return str(settings.CONFIG_DIR / cfg.ca_file) if cfg.ca_file else True


def check_destination(destination: str) -> None:
    rule = decide(destination)
    if rule is not None:
        raise MatrixError(403, Errcode.FORBIDDEN,
                          f"Federation with {destination} is not allowed ({rule})")


async def _target(destination: str) -> resolver.Target:
    try:
        target = await asyncio.to_thread(resolver.resolve, destination, verify=_verify())
        ips = await asyncio.to_thread(resolver.addresses, target.host, target.port)
    except (OSError, ValueError) as e:
        raise FederationError(destination, f"cannot resolve: {e}") from None
    if not settings.PALISADE.federation.allow_private_addresses:
        if not ips or any(resolver.is_private_address(ip) for ip in ips):
            raise FederationError(destination, "refusing a private or loopback address")
    return target


def path_of(*segments: str) -> str:
    return "/".join(quote(s, safe="") for s in segments)


async def request(
    method: str,
    destination: str,
    path: str,
    *,
    query: dict[str, Any] | None = None,
    content: Any = None,
    timeout: float | None = None,
) -> Any:
    """One signed request; returns the parsed JSON body of a 2xx answer, else raises
    FederationError (with status and body when the remote answered)."""
    # decide() reads the admin-managed and TI-Messenger lists from the database (cached).
    await sync_to_async(check_destination)(destination)
    cfg = settings.PALISADE
    target = await _target(destination)
    uri = path + ("?" + urlencode(query, doseq=True) if query else "")
    auth = authorization_header(method, uri, cfg.server_name, destination, content,
                                server_signing_key())
    host = f"[{target.host}]" if ":" in target.host else target.host
    url = f"https://{host}:{target.port}{uri}"
    headers = {"Authorization": auth, "Host": target.host_header,
               "Content-Type": "application/json", "User-Agent": "Palisade"}
    extensions = {"sni_hostname": target.tls_name} if target.tls_name else {}
    body = orjson.dumps(content) if content is not None else None
    try:
        async with httpx.AsyncClient(verify=_verify(), timeout=timeout
                                     or cfg.federation.request_timeout_seconds) as client:
            resp = await client.request(method, url, content=body, headers=headers,
                                        extensions=extensions)
    except httpx.HTTPError as e:
        raise FederationError(destination, f"{type(e).__name__}: {e}") from None
    try:
        parsed = resp.json() if resp.content else {}
    except ValueError:
        parsed = None
    if not resp.is_success:
        raise FederationError(destination, f"HTTP {resp.status_code}", resp.status_code, parsed)
    return parsed
