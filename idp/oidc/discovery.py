"""Provider metadata (OpenID Connect Discovery 1.0) and signing keys (the JWKS), fetched with
httpx and cached per process.

Key rotation: a token signed with a key id the cached JWKS lacks makes us fetch the JWKS again
(at most once per MIN_JWKS_REFRESH_S per provider, so forged key ids cannot make us hammer the
provider); keys the provider dropped disappear with that fetch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

DISCOVERY_TTL_S = 3600
JWKS_TTL_S = 3600
MIN_JWKS_REFRESH_S = 5
HTTP_TIMEOUT_S = 10.0

_metadata: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks: dict[str, tuple[float, list[dict[str, Any]]]] = {}


class ProviderUnavailable(Exception):
    """The provider's metadata or keys could not be fetched or are malformed."""


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str
    end_session_endpoint: str
    par_endpoint: str
    raw: dict[str, Any]


def _parse(doc: dict[str, Any], issuer: str) -> ProviderMetadata:
    # OpenID Connect Discovery 1.0 section 4.3: the issuer in the document MUST be identical to
    # the one we asked for (guards against a mix-up between providers).
    if doc.get("issuer") != issuer:
        raise ProviderUnavailable(
            f"issuer mismatch in discovery: expected {issuer!r}, got {doc.get('issuer')!r}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(key), str):
            raise ProviderUnavailable(f"discovery document lacks {key}")
    return ProviderMetadata(
        issuer=issuer, authorization_endpoint=doc["authorization_endpoint"],
        token_endpoint=doc["token_endpoint"], jwks_uri=doc["jwks_uri"],
        userinfo_endpoint=doc.get("userinfo_endpoint") or "",
        end_session_endpoint=doc.get("end_session_endpoint") or "",
        par_endpoint=doc.get("pushed_authorization_request_endpoint") or "", raw=doc,
    )


async def _get_json(url: str) -> Any:
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            resp = await client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as e:
        raise ProviderUnavailable(f"GET {url}: {type(e).__name__}") from None
    if resp.status_code != 200:
        raise ProviderUnavailable(f"GET {url}: HTTP {resp.status_code}")
    try:
        return resp.json()
    except ValueError:
        raise ProviderUnavailable(f"GET {url}: not JSON") from None


async def metadata(issuer: str) -> ProviderMetadata:
    cached = _metadata.get(issuer)
    if cached and time.monotonic() - cached[0] < DISCOVERY_TTL_S:
        return _parse(cached[1], issuer)
    doc = await _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if not isinstance(doc, dict):
        raise ProviderUnavailable("discovery document is not an object")
    parsed = _parse(doc, issuer)
    _metadata[issuer] = (time.monotonic(), doc)
    return parsed


async def _fetch_jwks(jwks_uri: str) -> list[dict[str, Any]]:
    doc = await _get_json(jwks_uri)
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise ProviderUnavailable("JWKS has no keys array")
    keys = [k for k in keys if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    _jwks[jwks_uri] = (time.monotonic(), keys)
    return keys


def _select(keys: list[dict[str, Any]], kid: str | None, alg: str) -> dict[str, Any] | None:
    family = {"R": "RSA", "P": "RSA", "E": "EC"}.get(alg[:1])
    candidates = [k for k in keys if k.get("kty") == family
                  and (k.get("alg") in (None, alg))]
    if kid is not None:
        candidates = [k for k in candidates if k.get("kid") == kid]
    elif len(candidates) != 1:
        return None  # no kid and several keys: ambiguous, refuse rather than guess
    return candidates[0] if candidates else None


async def signing_key(jwks_uri: str, kid: str | None, alg: str) -> dict[str, Any] | None:
    """The provider's public key for a token header (kid, alg), refreshing the JWKS once when
    the key id is unknown (the provider rotated its keys)."""
    cached = _jwks.get(jwks_uri)
    fresh = cached is not None and time.monotonic() - cached[0] < JWKS_TTL_S
    if fresh:
        key = _select(cached[1], kid, alg)
        if key is not None or time.monotonic() - cached[0] < MIN_JWKS_REFRESH_S:
            return key
    return _select(await _fetch_jwks(jwks_uri), kid, alg)


def forget(issuer: str | None = None) -> None:
    """Drop cached metadata and keys (tests; an operator's reload)."""
    if issuer is None:
        _metadata.clear()
        _jwks.clear()
        return
    doc = _metadata.pop(issuer, None)
    if doc is not None:
        _jwks.pop(doc[1].get("jwks_uri", ""), None)
