"""Verifying the JWTs providers send us: ID tokens (OpenID Connect Core 1.0 section 3.1.3.7),
logout tokens (OpenID Connect Back-Channel Logout 1.0 section 2.6), security event tokens
(RFC 8417) and TI-Messenger style login JWTs.

The signature is checked first, with the provider's key for the header's `kid`, and only for
algorithms on the provider's allow-list (never `none`, never HMAC: config.py refuses both).
Every refusal is a TokenRejected with a short machine `reason` (it goes to the audit log) and
a sentence for the person at the browser.
"""

from __future__ import annotations

import json
from typing import Any

from jose import jws
from jose.exceptions import JOSEError

from idp.oidc.discovery import signing_key

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class TokenRejected(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def unverified_header(token: str) -> dict[str, Any]:
    try:
        header = jws.get_unverified_header(token)
    except JOSEError:
        raise TokenRejected("malformed", "The token is not a well-formed JWT.") from None
    if not isinstance(header, dict):
        raise TokenRejected("malformed", "The token header is not an object.")
    return header


async def verify_signature(token: str, jwks_uri: str,
                           algorithms: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a JWT whose signature verifies with the provider's key."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise TokenRejected("malformed", "The token is not a well-formed JWT.")
    header = unverified_header(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise TokenRejected("alg_not_allowed",
                            f"The token is signed with an algorithm this server does not accept "
                            f"({alg!r}).")
    key = await signing_key(jwks_uri, header.get("kid"), alg)
    if key is None:
        raise TokenRejected("unknown_key", "The token is signed with a key the provider does "
                                           "not publish.")
    try:
        payload = jws.verify(token, key, algorithms=[alg])
    except JOSEError:
        raise TokenRejected("bad_signature", "The token's signature is not valid.") from None
    try:
        claims = json.loads(payload)
    except ValueError:
        raise TokenRejected("malformed", "The token's claims are not JSON.") from None
    if not isinstance(claims, dict):
        raise TokenRejected("malformed", "The token's claims are not an object.")
    return header, claims


def _number(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenRejected(f"missing_{name}", f"The token has no {name} claim.")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected(f"bad_{name}", f"The token's {name} claim is not a number.")
    return float(value)


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return aud
    return []


def check_common(claims: dict[str, Any], *, issuer: str, audience: str, now: float,
                 leeway: int, require_exp: bool = True) -> None:
    if claims.get("iss") != issuer:
        raise TokenRejected("wrong_issuer", "The token was issued by a different provider.")
    auds = _audiences(claims)
    if audience not in auds:
        raise TokenRejected("wrong_audience", "The token was issued for a different client.")
    if len(auds) > 1 and claims.get("azp") not in (None, audience):
        raise TokenRejected("wrong_audience", "The token was issued for a different client.")
    exp = _number(claims, "exp", required=require_exp)
    if exp is not None and now > exp + leeway:
        raise TokenRejected("expired", "The token has expired.")
    iat = _number(claims, "iat", required=True)
    assert iat is not None
    if iat > now + leeway:
        raise TokenRejected("issued_in_future", "The token claims to be issued in the future.")
    nbf = _number(claims, "nbf", required=False)
    if nbf is not None and nbf > now + leeway:
        raise TokenRejected("not_yet_valid", "The token is not valid yet.")


def _check_sub(claims: dict[str, Any]) -> str:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise TokenRejected("missing_sub", "The token names no subject.")
    return sub


def check_age(claims: dict[str, Any], *, max_age: int | None, now: float, leeway: int) -> None:
    """TI-M "ID token valid <= 24 h": the authentication (auth_time, else iat) is not older."""
    if max_age is None:
        return
    auth_time = _number(claims, "auth_time", required=False) or _number(claims, "iat",
                                                                        required=True)
    assert auth_time is not None
    if now - auth_time > max_age + leeway:
        raise TokenRejected("too_old", "The sign-in at the provider is older than this server "
                                       "accepts; please sign in again.")


def check_id_token(claims: dict[str, Any], *, issuer: str, client_id: str, nonce: str,
                   now: float, leeway: int, max_age: int | None) -> str:
    """OpenID Connect Core 1.0 section 3.1.3.7; returns the subject."""
    check_common(claims, issuer=issuer, audience=client_id, now=now, leeway=leeway)
    if claims.get("nonce") != nonce:
        raise TokenRejected("nonce_mismatch", "The token does not belong to this sign-in.")
    check_age(claims, max_age=max_age, now=now, leeway=leeway)
    return _check_sub(claims)


def check_logout_token(claims: dict[str, Any], *, issuer: str, client_id: str, now: float,
                       leeway: int) -> tuple[str, str]:
    """OpenID Connect Back-Channel Logout 1.0 section 2.6; returns (sub, sid), either may be
    "" but not both."""
    check_common(claims, issuer=issuer, audience=client_id, now=now, leeway=leeway,
                 require_exp=False)
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT),
                                                      dict):
        raise TokenRejected("not_a_logout_token", "The token carries no back-channel logout "
                                                  "event.")
    if "nonce" in claims:
        raise TokenRejected("nonce_present", "A logout token must not carry a nonce.")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise TokenRejected("missing_jti", "The logout token has no jti.")
    sub = claims.get("sub") if isinstance(claims.get("sub"), str) else ""
    sid = claims.get("sid") if isinstance(claims.get("sid"), str) else ""
    if not sub and not sid:
        raise TokenRejected("missing_sub", "The logout token names neither sub nor sid.")
    return sub, sid


def check_login_jwt(header: dict[str, Any], claims: dict[str, Any], *, issuer: str,
                    audience: str, types: tuple[str, ...], now: float, leeway: int,
                    max_age: int | None) -> str:
    """TI-Messenger style token login: iss, aud, exp, single-use jti (checked by the caller
    against the store), typ and an allowed alg; returns the subject."""
    if header.get("typ") not in types:
        raise TokenRejected("wrong_typ", "The token is not of a type this server accepts.")
    check_common(claims, issuer=issuer, audience=audience, now=now, leeway=leeway)
    if not isinstance(claims.get("jti"), str) or not claims["jti"] or len(claims["jti"]) > 255:
        raise TokenRejected("missing_jti", "The token has no jti.")
    check_age(claims, max_age=max_age, now=now, leeway=leeway)
    return _check_sub(claims)
