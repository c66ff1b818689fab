"""The federation list payload and looking a server up in it. Pure: no Django, no I/O.

Schema (REQUIREMENTS.md "list source"; gematik I_VZD_TIM_Provider_Services, schema
FederationList): `{version: integer, domainList: [{domain, telematikID, isInsurance, ik[],
timAnbieter}]}`. Older versions of the interface publish hashed domain names instead: then the
payload names the hash (`hashAlgorithm`, only "SHA-256" is defined) and each `domain` is the
lower-case hex SHA-256 of the domain name. Both forms are accepted; a lookup hashes the server's
host when the list is hashed. Only `domain` is required per entry (the interface versions
differ in which of the other fields they carry); present fields must have their types.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from compliance.federation_patterns import host_of

MAX_ENTRIES = 200_000
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DOMAIN = re.compile(r"(?=.{1,255}$)[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?"
                     r"(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)*(:[0-9]{1,5})?")


class PayloadError(ValueError):
    """The payload does not follow the federation list schema."""


@dataclass(frozen=True)
class FederationList:
    version: int
    entries: tuple[dict[str, Any], ...]
    hash_algorithm: str = ""  # "" = plain domain names

    def lookup(self, server: str) -> dict[str, Any] | None:
        """The list entry covering `server` (its host; ports are not part of list domains)."""
        return index(self).get(_key(self.hash_algorithm, server))


_indexes: dict[int, tuple[FederationList, dict[str, dict[str, Any]]]] = {}


def _key(hash_algorithm: str, server: str) -> str:
    host = host_of(server.lower())
    if hash_algorithm:
        return hashlib.sha256(host.encode()).hexdigest()
    return host


def index(flist: FederationList) -> dict[str, dict[str, Any]]:
    cached = _indexes.get(id(flist))
    if cached is not None and cached[0] is flist:
        return cached[1]
    idx = {}
    for e in flist.entries:
        d = e["domain"].lower()
        idx[d if flist.hash_algorithm else host_of(d)] = e
    _indexes.clear()  # one list is current at a time
    _indexes[id(flist)] = (flist, idx)
    return idx


def _check_entry(i: int, e: Any, hashed: bool) -> dict[str, Any]:
    where = f"domainList[{i}]"
    if not isinstance(e, dict):
        raise PayloadError(f"{where} is not an object")
    domain = e.get("domain")
    if not isinstance(domain, str):
        raise PayloadError(f"{where}.domain is missing or not a string")
    domain = domain.lower()
    if hashed and not _HEX64.fullmatch(domain):
        raise PayloadError(f"{where}.domain is not a hex SHA-256 hash")
    if not hashed and not _DOMAIN.fullmatch(domain):
        raise PayloadError(f"{where}.domain is not a domain name")
    for key, kind in (("telematikID", str), ("timAnbieter", str), ("isInsurance", bool)):
        if key in e and not isinstance(e[key], kind):
            raise PayloadError(f"{where}.{key} must be a {kind.__name__}")
    ik = e.get("ik", [])
    if not isinstance(ik, list) or not all(isinstance(x, str) for x in ik):
        raise PayloadError(f"{where}.ik must be a list of strings")
    out = {"domain": domain, "isInsurance": bool(e.get("isInsurance", False)), "ik": ik}
    for key in ("telematikID", "timAnbieter"):
        if key in e:
            out[key] = e[key]
    return out


def parse(raw: bytes) -> FederationList:
    """The validated list, or PayloadError naming the first problem."""
    try:
        doc = json.loads(raw)
    except ValueError:
        raise PayloadError("the payload is not JSON") from None
    if not isinstance(doc, dict):
        raise PayloadError("the payload is not a JSON object")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise PayloadError("version must be a non-negative integer")
    algo = doc.get("hashAlgorithm", "")
    if algo not in ("", "SHA-256"):
        raise PayloadError(f"unsupported hashAlgorithm {algo!r} (only SHA-256)")
    domains = doc.get("domainList")
    if not isinstance(domains, list):
        raise PayloadError("domainList must be a list")
    if len(domains) > MAX_ENTRIES:
        raise PayloadError(f"domainList has more than {MAX_ENTRIES} entries")
    entries = tuple(_check_entry(i, e, bool(algo)) for i, e in enumerate(domains))
    return FederationList(version, entries, algo)
