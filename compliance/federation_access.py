"""Which servers we federate with: the allow-list and deny-list decision, in and out.

Spec of the requirement: REQUIREMENTS.md "Federation" (A_25534, AF_10064): only listed servers
may talk to us, and we talk only to them. Entries are server names as written in ids (with a
port where the server uses one); "*.example.org" covers example.org and its subdomains
(compliance/federation_patterns.py). Sources, all consulted on every decision:
- `[federation] allow_list` / `deny_list` in the config (None allow_list = open federation, as
  `standard` deployments want; `allow_list = []` = only what the other sources admit);
- the entries compliance officers manage in the admin (compliance/federation_lists.py), read
  by every process within seconds of a change;
- the TI-Messenger federation list when active (compliance/timlist/): it switches the
  allow-list on, and a stale list (or none) refuses every server;
- any further callables in SOURCES.
A deny entry always wins. Allow entries of the admin and of SOURCES extend an allow-list in
force (config `allow_list` set, or the TI-Messenger list active); under open federation they
change nothing, so adding one entry never shuts out every other server by surprise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings

from compliance import federation_lists, timlist
from compliance.federation_patterns import matches as _matches
from compliance.hooks import ALLOW, Deny, Hook, register

# Sources: callables returning (allowed patterns, denied patterns).
SOURCES: list[Callable[[], tuple[Iterable[str], Iterable[str]]]] = [federation_lists.source]


def decide(server: str) -> str | None:
    """None when `server` may federate with us, else the name of the rule that refuses it.
    May read the database (cached) and, under the TI-Messenger list, re-fetch the list once
    for an unknown server: call it from sync code (sync_to_async in async views)."""
    cfg = settings.PALISADE.federation
    if not cfg.enabled:
        return "federation.disabled"
    if server == settings.PALISADE.server_name:
        return None
    denied = list(cfg.deny_list)
    allowed = list(cfg.allow_list or ())
    for source in SOURCES:
        a, d = source()
        denied += list(d)
        allowed += list(a)
    if _matches(server, denied):
        return "federation.deny_list"
    tim = timlist.is_active()
    if tim and timlist.snapshot().is_stale():
        return timlist.RULE_STALE  # A_25537: a list older than 72 h blocks all federation
    if cfg.allow_list is None and not tim:
        return None  # open federation
    if _matches(server, allowed):
        return None
    if tim:
        return timlist.decide(server)
    return "federation.allow_list"


def federation_request_policy(ctx: dict) -> object:
    """Hook.FEDERATION_REQUEST: the origin of an inbound request, before its body is read."""
    rule = decide(ctx["origin"])
    if rule is None:
        return ALLOW
    return Deny(rule=rule, reason=f"Federation with {ctx['origin']} is not allowed")


def register_policies() -> None:
    register(Hook.FEDERATION_REQUEST, federation_request_policy)
