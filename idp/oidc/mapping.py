"""From a provider's claims to a Matrix account: the mapping templates, the attribute
requirements and the staff roles. Pure functions (no Django, no I/O).

Templates: literal text with "{claim}" placeholders; a dotted name reads nested claims
("{address.locality}"); filters follow "|": lower, upper, strip, localpart (the part of an
e-mail address before "@"), first (first element of a list). A placeholder whose claim is
missing renders as "".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from homeserver.config import AttributeRequirement, OidcProviderConfig

_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.:-]+)((?:\|[a-z_]+)*)\}")
# Spec: appendices "User Identifiers": historical localparts aside, new ones use a-z 0-9 . _ = - /
_ALLOWED = set("abcdefghijklmnopqrstuvwxyz0123456789._-/")
MAX_LOCALPART = 200


class TemplateError(ValueError):
    pass


def claim_value(claims: dict[str, Any], name: str) -> Any:
    node: Any = claims
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _apply(value: Any, filt: str) -> Any:
    if filt == "first":
        return value[0] if isinstance(value, list) and value else value
    text = "" if value is None else str(value)
    if filt == "lower":
        return text.lower()
    if filt == "upper":
        return text.upper()
    if filt == "strip":
        return text.strip()
    if filt == "localpart":
        return text.split("@", 1)[0]
    raise TemplateError(f"unknown template filter {filt!r}")


def render(template: str, claims: dict[str, Any]) -> str:
    def one(m: re.Match[str]) -> str:
        value = claim_value(claims, m.group(1))
        for filt in filter(None, m.group(2).split("|")):
            value = _apply(value, filt)
        if value is None or isinstance(value, dict | list):
            return ""
        return str(value)

    return _PLACEHOLDER.sub(one, template).strip()


def map_localpart(text: str) -> str:
    """Spec: appendices "Mapping from other character sets": lower-case, and every character
    outside the allowed set becomes "=" followed by its code point's UTF-8 bytes in hex."""
    out = []
    for ch in text.lower():
        if ch in _ALLOWED:
            out.append(ch)
        else:
            out.append("".join(f"={b:02x}" for b in ch.encode("utf-8")))
    return "".join(out)[:MAX_LOCALPART].strip("/")


def _values(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int)]
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [str(value)]
    return []


def failed_requirements(requirements: Iterable[AttributeRequirement],
                        claims: dict[str, Any]) -> list[str]:
    """Names of the claims whose requirement is not met (empty: all met)."""
    failed = []
    for req in requirements:
        values = _values(claim_value(claims, req.claim))
        ok = any(v in req.one_of for v in values) if req.one_of else req.contains in values
        if not ok:
            failed.append(req.claim)
    return failed


def staff_roles(provider: OidcProviderConfig, claims: dict[str, Any]) -> list[str]:
    """The admin roles (group names of audit/roles.py) the provider's groups map to."""
    groups = set(_values(claim_value(claims, provider.groups_claim)))
    return sorted(role for role, wanted in provider.staff_roles.items()
                  if groups.intersection(wanted))


# Claims never copied anywhere (audit details, logs): they can hold secrets or are noise.
SECRET_CLAIMS = frozenset({"at_hash", "c_hash", "nonce", "access_token", "refresh_token",
                           "id_token", "sid"})
