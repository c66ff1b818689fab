"""The provider round trip's second half, shared by every purpose (client login, OAuth 2.0
API, admin UI): exchange the code, verify the ID token, fetch userinfo.

OpenID Connect Core 1.0 sections 3.1.3.3-3.1.3.7 (token response, ID token validation) and
5.3.2 (the userinfo `sub` MUST match the ID token's).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from homeserver.config import OidcProviderConfig
from idp import store
from idp.oidc import client, discovery
from idp.oidc.jwt_checks import TokenRejected, check_id_token, verify_signature
from idp.oidc.providers import UnknownProvider, get_provider
from idp.services.sso import SsoError, refuse


@dataclass(frozen=True)
class ProviderIdentity:
    provider: OidcProviderConfig
    issuer: str
    subject: str
    sid: str
    claims: dict[str, Any]


async def identify(flow: store.FlowRecord, code: str) -> ProviderIdentity:
    """Who the provider says signed in, or SsoError (audited) for anything untrustworthy."""
    try:
        provider = get_provider(flow.provider_id)
    except UnknownProvider:
        raise await sync_to_async(refuse)(flow, "provider_removed",
                                          "This identity provider is no longer configured.",
                                          400) from None
    try:
        meta = await discovery.metadata(provider.issuer)
        tokens = await client.exchange_code(provider, meta, code=code,
                                            code_verifier=flow.code_verifier)
        _, claims = await verify_signature(tokens["id_token"], meta.jwks_uri,
                                           provider.id_token_algorithms)
        subject = check_id_token(claims, issuer=provider.issuer, client_id=provider.client_id,
                                 nonce=flow.nonce, now=time.time(),
                                 leeway=provider.clock_skew_seconds,
                                 max_age=provider.max_token_age_seconds)
        if provider.claims_source == "userinfo" and isinstance(tokens.get("access_token"), str):
            info = await client.userinfo(meta, tokens["access_token"])
            if info.get("sub") != subject:
                raise TokenRejected("userinfo_sub_mismatch",
                                    "The provider's user information is for someone else.")
            claims = {**claims, **{k: v for k, v in info.items() if k != "sub"}}
    except TokenRejected as e:
        raise await sync_to_async(refuse)(flow, e.reason, "The identity provider's answer was "
                                          f"refused: {e.message}") from None
    except discovery.ProviderUnavailable as e:
        raise await sync_to_async(refuse)(flow, "provider_unavailable",
                                          "The identity provider could not complete the "
                                          "sign-in. Please try again later.", 502,
                                          {"error": str(e)[:200]}) from None
    sid = claims.get("sid") if isinstance(claims.get("sid"), str) else ""
    return ProviderIdentity(provider, provider.issuer, subject, sid, claims)


def provider_error(flow: store.FlowRecord, error: str) -> SsoError:
    """The provider sent the user back with ?error= (RFC 6749 section 4.1.2.1)."""
    safe = "".join(ch for ch in error[:64] if ch.isalnum() or ch in "_-.")
    return refuse(flow, "provider_error", "The identity provider did not sign you in "
                                          f"({safe or 'error'}).", 403, {"error": safe})
