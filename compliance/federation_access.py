"""Which servers we federate with: the allow-list and deny-list decision, in and out.

Spec of the requirement: REQUIREMENTS.md "Federation" (A_25534, AF_10064): only listed servers
may talk to us, and we talk only to them. Entries are server names as written in ids (with a
port where the server uses one); "*.example.org" covers subdomains of example.org. Sources:
[federation] allow_list / deny_list in the config (None allow_list = open federation, as
`standard` deployments want). Compliance officers' admin-managed entries and the TI-Messenger
federation list plug in as further sources (see SOURCES).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings

from compliance.hooks import ALLOW, Deny, Hook, register


def _matches(server: str, patterns: Iterable[str]) -> bool:
    host = server.rsplit(":", 1)[0] if server.count(":") == 1 else server
    for p in patterns:
        if p == server or p == host:
            return True
        if p.startswith("*.") and (host.endswith(p[1:]) or host == p[2:]):
            return True
    return False


# Extra sources: callables returning (allowed, denied) patterns, e.g. the admin-managed lists.
SOURCES: list[Callable[[], tuple[Iterable[str] | None, Iterable[str]]]] = []


def decide(server: str) -> str | None:
    """None when `server` may federate with us, else the name of the rule that refuses it."""
    cfg = settings.PALISADE.federation
    if not cfg.enabled:
        return "federation.disabled"
    if server == settings.PALISADE.server_name:
        return None
    denied = list(cfg.deny_list)
    allowed = None if cfg.allow_list is None else list(cfg.allow_list)
    for source in SOURCES:
        a, d = source()
        denied += list(d)
        if a is not None:
            allowed = (allowed or []) + list(a)
    if _matches(server, denied):
        return "federation.deny_list"
    if allowed is not None and not _matches(server, allowed):
        return "federation.allow_list"
    return None


def federation_request_policy(ctx: dict) -> object:
    """Hook.FEDERATION_REQUEST: the origin of an inbound request, before its body is read."""
    rule = decide(ctx["origin"])
    if rule is None:
        return ALLOW
    return Deny(rule=rule, reason=f"Federation with {ctx['origin']} is not allowed")


def register_policies() -> None:
    register(Hook.FEDERATION_REQUEST, federation_request_policy)
