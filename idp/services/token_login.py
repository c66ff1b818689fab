"""POST /login with a token instead of a password:

- `m.login.token` (spec: client-server API "Login", "Client login via SSO" step 6): the
  short-lived, single-use token the SSO callback put on the client's redirectUrl;
- `org.matrix.login.jwt`, TI-Messenger style: a JWT a configured provider (a sectoral IdP)
  signed for this server; checked for iss, aud, exp, typ, an allowed alg (never `none`) and a
  jti that is accepted once (REQUIREMENTS.md "ePA login").

Both are refused with 403 M_FORBIDDEN (spec: an invalid token "must respond with 403 Forbidden
and an error code of M_FORBIDDEN") and an audit record, and create nothing when refused.
"""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction

from audit.actions import AuditAction
from audit.log import record
from homeserver.config import OidcProviderConfig
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts.sessions import (
    check_device_id,
    check_device_name,
    now_ms,
    start_session,
)
from homeserver.services.accounts.user_ids import server_name
from homeserver.services.ratelimit import check_rate_limit
from homeserver.storage import accounts as account_store
from idp import store
from idp.oidc.providers import all_providers
from idp.services.provisioning import ProvisioningRefused, after_commit, sign_in, subject_ref
from idp.services.sso import digest

TOKEN_LOGIN = "m.login.token"
JWT_LOGIN = "org.matrix.login.jwt"


def _session_fields(body: dict[str, Any]) -> tuple[str | None, str, bool]:
    device_id = body.get("device_id")
    if device_id is not None:
        check_device_id(device_id)
    display_name = check_device_name(body.get("initial_device_display_name"))
    refreshable = body.get("refresh_token", False)
    if not isinstance(refreshable, bool):
        raise MatrixError(400, Errcode.BAD_JSON, "refresh_token must be a boolean")
    return device_id, display_name, refreshable


def _refused(method: str, reason: str, *, user_id: str = "", provider: str = "",
             message: str = "Invalid login token") -> MatrixError:
    with transaction.atomic():
        record(AuditAction.LOGIN_FAILED, actor=user_id or f"{method}:{provider or 'unknown'}",
               target=user_id, details={"method": method, "reason": reason,
                                        "provider": provider})
    return MatrixError(403, Errcode.FORBIDDEN, message)


def _open_session(user_id: str, body: dict[str, Any], *, method: str, provider_id: str,
                  subject: str, sid: str) -> dict[str, Any]:
    device_id, display_name, refreshable = _session_fields(body)
    known = device_id is not None and account_store.device_pk(user_id, device_id) is not None
    session = start_session(user_id, device_id=device_id, display_name=display_name,
                            refreshable=refreshable)
    store.add_provider_session(provider_id=provider_id, subject=subject, sid=sid,
                               user_id=user_id, device_id=session.device_id, now=now_ms())
    record(AuditAction.LOGIN_SUCCEEDED, actor=user_id, target=user_id,
           details={"device_id": session.device_id, "method": method, "provider": provider_id,
                    "existing_device": known})
    return session.login_response(server_name())


def login_with_token(body: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    check_rate_limit("login", f"ip:{ip}")
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise MatrixError(400, Errcode.MISSING_PARAM, "token is required")
    _session_fields(body)  # bad fields are a 400 before the token is spent
    with transaction.atomic():
        rec = store.consume_login_token(digest(token), now_ms())
        account = account_store.lock_account(rec.user_id) if rec else None
        if rec is not None and account is not None and not account.deactivated:
            return _open_session(rec.user_id, body, method=TOKEN_LOGIN,
                                 provider_id=rec.provider_id, subject=rec.subject, sid=rec.sid)
    # Outside the block: a refused token stays spent only if it was genuinely consumed.
    raise _refused(TOKEN_LOGIN, "unknown_used_or_expired" if rec is None else "deactivated",
                   user_id=rec.user_id if rec else "", provider=rec.provider_id if rec else "")


def _jwt_provider(token: str) -> OidcProviderConfig | None:
    import json

    from jose.utils import base64url_decode

    try:
        claims = json.loads(base64url_decode(token.split(".")[1].encode()))
    except (ValueError, IndexError):
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    for p in all_providers():
        if p.token_login and p.issuer == iss:
            return p
    return None


async def _verify_jwt(provider: OidcProviderConfig, token: str) -> tuple[dict, dict]:
    from idp.oidc import discovery
    from idp.oidc.jwt_checks import verify_signature

    meta = await discovery.metadata(provider.issuer)
    return await verify_signature(token, meta.jwks_uri, provider.id_token_algorithms)


def login_with_jwt(body: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    """Runs in a worker thread (see homeserver/api/offload.py), so the provider's keys are
    fetched with async_to_sync. The OIDC client (httpx, python-jose) is imported here, on the
    first JWT login, not by every server process at start."""
    from idp.oidc import discovery
    from idp.oidc.jwt_checks import TokenRejected, check_login_jwt

    check_rate_limit("login", f"ip:{ip}")
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise MatrixError(400, Errcode.MISSING_PARAM, "token is required")
    _session_fields(body)
    provider = _jwt_provider(token)
    if provider is None:
        raise _refused(JWT_LOGIN, "unknown_issuer")
    try:
        header, claims = async_to_sync(_verify_jwt)(provider, token)
        subject = check_login_jwt(
            header, claims, issuer=provider.issuer,
            audience=provider.token_login_audience or provider.client_id,
            types=provider.token_login_types, now=time.time(),
            leeway=provider.clock_skew_seconds, max_age=provider.max_token_age_seconds)
    except TokenRejected as e:
        raise _refused(JWT_LOGIN, e.reason, provider=provider.id, message=e.message) from None
    except discovery.ProviderUnavailable:
        raise _refused(JWT_LOGIN, "provider_unavailable", provider=provider.id,
                       message="The identity provider cannot be reached") from None
    exp_ms = int(float(claims["exp"]) * 1000) + provider.clock_skew_seconds * 1000
    try:
        with transaction.atomic():
            if not store.remember_jti(issuer=provider.issuer, jti=claims["jti"],
                                      purpose="login", expires=exp_ms):
                raise TokenRejected("replayed_jti", "This token has already been used.")
            signed = sign_in(provider, issuer=provider.issuer, subject=subject, claims=claims)
            record(AuditAction.LOGIN_SUCCEEDED, actor=signed.user_id, target=signed.user_id,
                   details={"method": JWT_LOGIN, "stage": "provider", "provider": provider.id,
                            "subject_ref": subject_ref(provider.issuer, subject),
                            "provisioned": signed.created})
            response = _open_session(signed.user_id, body, method=JWT_LOGIN,
                                     provider_id=provider.id, subject=subject,
                                     sid=str(claims.get("sid") or ""))
    except TokenRejected as e:
        raise _refused(JWT_LOGIN, e.reason, provider=provider.id, message=e.message) from None
    except ProvisioningRefused as e:
        raise _refused(JWT_LOGIN, e.reason, provider=provider.id, message=e.message) from None
    after_commit(signed)
    return response
