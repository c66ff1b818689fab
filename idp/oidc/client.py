"""The relying party's calls to a provider: the authorization request (optionally pushed,
RFC 9126), the token request with client authentication (OpenID Connect Core 1.0 section 9:
client_secret_basic, client_secret_post, private_key_jwt) and the userinfo request."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from django.conf import settings
from jose import jwt

from homeserver.config import OidcProviderConfig
from idp.oidc.discovery import HTTP_TIMEOUT_S, ProviderMetadata, ProviderUnavailable
from idp.oidc.providers import callback_url

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 section 4.2, S256."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@lru_cache(maxsize=16)
def _private_key(path: str) -> str:
    p = Path(path)
    if not p.is_absolute():
        p = Path(settings.CONFIG_DIR) / p
    return p.read_text()


def _assertion(provider: OidcProviderConfig, audience: str) -> str:
    """RFC 7523 client assertion for private_key_jwt."""
    pem = _private_key(provider.client_private_key_path)
    alg = "ES256" if "EC PRIVATE KEY" in pem or _is_ec(pem) else "RS256"
    now = int(time.time())
    headers = {"kid": provider.client_private_key_kid} if provider.client_private_key_kid else None
    return jwt.encode({"iss": provider.client_id, "sub": provider.client_id, "aud": audience,
                       "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 60},
                      pem, algorithm=alg, headers=headers)


def _is_ec(pem: str) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return isinstance(load_pem_private_key(pem.encode(), password=None),
                      ec.EllipticCurvePrivateKey)


def client_auth(provider: OidcProviderConfig, endpoint: str,
                form: dict[str, str]) -> dict[str, str]:
    """Adds the client's credentials to `form`; returns the extra request headers."""
    method = provider.client_auth_method
    if method == "client_secret_basic":
        # RFC 6749 section 2.3.1: both parts form-urlencoded before Base64.
        raw = f"{quote(provider.client_id, safe='')}:{quote(provider.client_secret, safe='')}"
        return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}
    form["client_id"] = provider.client_id
    if method == "client_secret_post":
        form["client_secret"] = provider.client_secret
    else:
        form["client_assertion_type"] = JWT_BEARER
        form["client_assertion"] = _assertion(provider, endpoint)
    return {}


async def _post_form(url: str, form: dict[str, str], headers: dict[str, str],
                     expect: tuple[int, ...] = (200,)) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            resp = await client.post(url, data=form,
                                     headers={"Accept": "application/json", **headers})
    except httpx.HTTPError as e:
        raise ProviderUnavailable(f"POST {url}: {type(e).__name__}") from None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code not in expect or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        raise ProviderUnavailable(f"POST {url}: HTTP {resp.status_code} {error or ''}".strip())
    return body


async def authorization_url(provider: OidcProviderConfig, meta: ProviderMetadata, *,
                            state: str, nonce: str, code_verifier: str) -> str:
    params = {
        "response_type": "code", "client_id": provider.client_id,
        "redirect_uri": callback_url(), "scope": " ".join(provider.scopes), "state": state,
        "nonce": nonce, "code_challenge": pkce_challenge(code_verifier),
        "code_challenge_method": "S256",
    }
    if provider.max_token_age_seconds is not None:
        # OpenID Connect Core 1.0 section 3.1.2.1: the provider re-authenticates older sessions
        # and must then include auth_time.
        params["max_age"] = str(provider.max_token_age_seconds)
    if provider.use_par:
        if not meta.par_endpoint:
            raise ProviderUnavailable("use_par is set but the provider has no PAR endpoint")
        headers = client_auth(provider, meta.par_endpoint, params)
        pushed = await _post_form(meta.par_endpoint, params, headers, expect=(200, 201))
        if not isinstance(pushed.get("request_uri"), str):
            raise ProviderUnavailable("PAR response has no request_uri")
        params = {"client_id": provider.client_id, "request_uri": pushed["request_uri"]}
    sep = "&" if "?" in meta.authorization_endpoint else "?"
    return meta.authorization_endpoint + sep + urlencode(params)


async def exchange_code(provider: OidcProviderConfig, meta: ProviderMetadata, *, code: str,
                        code_verifier: str) -> dict[str, Any]:
    """OpenID Connect Core 1.0 section 3.1.3: the token response (with its id_token)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback_url(),
            "code_verifier": code_verifier}
    headers = client_auth(provider, meta.token_endpoint, form)
    body = await _post_form(meta.token_endpoint, form, headers)
    if not isinstance(body.get("id_token"), str):
        raise ProviderUnavailable("token response has no id_token")
    return body


async def userinfo(meta: ProviderMetadata, access_token: str) -> dict[str, Any]:
    if not meta.userinfo_endpoint:
        raise ProviderUnavailable("the provider has no userinfo endpoint")
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            resp = await client.get(meta.userinfo_endpoint, headers={
                "Authorization": f"Bearer {access_token}", "Accept": "application/json"})
    except httpx.HTTPError as e:
        raise ProviderUnavailable(f"userinfo: {type(e).__name__}") from None
    if resp.status_code != 200 or "json" not in resp.headers.get("content-type", ""):
        # A signed (JWT) userinfo response is not supported: configure plain JSON.
        raise ProviderUnavailable(f"userinfo: HTTP {resp.status_code}")
    body = resp.json()
    if not isinstance(body, dict):
        raise ProviderUnavailable("userinfo is not an object")
    return body
