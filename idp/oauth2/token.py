"""The token and revocation endpoints. Spec: client-server API "Token request", "Refresh token
grant", "Token revocation" (RFC 6749 sections 4.1.3 and 6, RFC 7636 section 4.6, RFC 7009).

Tokens are the server's ordinary access and refresh tokens (homeserver/services/accounts/
sessions.py), bound to the device of the `urn:matrix:client:device:` scope, so every endpoint
authenticates them as it does any other; idp_oauth_session remembers which client holds the
device. A code is single use: presenting it again revokes what it produced (RFC 6749 4.1.2).
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.protocol.errors import MatrixError
from homeserver.services.accounts import sessions
from homeserver.storage import accounts as account_store
from idp import store as idp_store
from idp.oauth2 import keys, store
from idp.oauth2.http import OAuthError, endpoint, oauth_json
from idp.oauth2.metadata import issuer
from idp.oauth2.scope import parse_scope
from idp.oidc.client import pkce_challenge
from idp.services.sso import digest

ID_TOKEN_LIFETIME_S = 3600


def _form(request: HttpRequest) -> dict[str, str]:
    if not request.content_type.startswith("application/x-www-form-urlencoded"):
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    return {k: request.POST.get(k, "") for k in request.POST}


def _grant(session: sessions.IssuedSession, scope: str) -> dict[str, Any]:
    assert session.expires_in_ms is not None
    return {"access_token": session.access_token, "token_type": "Bearer",
            "expires_in": session.expires_in_ms // 1000, "refresh_token": session.refresh_token,
            "scope": scope}


def _revoke_device(user_id: str, device_id: str, *, reason: str, actor: str) -> None:
    sessions.remove_devices(user_id, [device_id], actor=actor, actor_type=ActorType.SYSTEM,
                            reason=reason)
    store.delete_session(user_id, device_id)
    record(AuditAction.OAUTH_SESSION_REVOKED, actor=actor, actor_type=ActorType.SYSTEM,
           target=user_id, details={"device_id": device_id, "reason": reason})


def exchange_code(form: dict[str, str]) -> dict[str, Any]:
    client_id = form.get("client_id", "")
    if store.get_client(client_id) is None:
        raise OAuthError("invalid_client", "unknown client_id", 401)
    with transaction.atomic():
        code = store.lock_code(digest(form.get("code", "")))
        if code is None:
            raise OAuthError("invalid_grant", "unknown authorization code")
        req = store.get_request(pk=code.request_pk)
        assert req is not None
        now = sessions.now_ms()
        if code.used_ts is not None:
            if code.issued_device_id:
                _revoke_device(req.user_id, code.issued_device_id, reason="code_replayed",
                               actor=f"oauth2-client:{client_id}")
            # Commit the revocation, then refuse.
            replayed = True
        else:
            replayed = False
    if replayed:
        raise OAuthError("invalid_grant", "the authorization code was already used")
    if code.expires_ts < now:
        raise OAuthError("invalid_grant", "the authorization code has expired")
    if req.client_id != client_id:
        raise OAuthError("invalid_grant", "the code was issued to another client")
    if form.get("redirect_uri") != req.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
    verifier = form.get("code_verifier", "")
    if not 43 <= len(verifier) <= 128 or not hmac.compare_digest(
            pkce_challenge(verifier), req.code_challenge):
        raise OAuthError("invalid_grant", "PKCE verification failed")
    scope = parse_scope(req.scope)
    with transaction.atomic():
        code = store.lock_code(digest(form["code"]))
        account = account_store.lock_account(req.user_id)
        if code is None or code.used_ts is not None:
            raise OAuthError("invalid_grant", "the authorization code was already used")
        if account is None or account.deactivated:
            raise OAuthError("invalid_grant", "the account is deactivated")
        client = store.get_client(client_id)
        session = sessions.start_session(
            req.user_id, device_id=scope.device_id, refreshable=True,
            display_name=str((client.metadata if client else {}).get("client_name", ""))[:512])
        store.mark_code_used(code.pk, now=now, device_id=session.device_id)
        store.upsert_session(client_id=client_id, user_id=req.user_id,
                             device_id=session.device_id, scope=req.scope, now=now)
        idp_store.add_provider_session(provider_id=req.provider_id, subject=req.subject,
                                       sid=req.sid, user_id=req.user_id,
                                       device_id=session.device_id, now=now)
        record(AuditAction.LOGIN_SUCCEEDED, actor=req.user_id, target=req.user_id,
               details={"method": "oauth2", "device_id": session.device_id,
                        "client_id": client_id, "provider": req.provider_id})
    body = _grant(session, req.scope)
    if scope.openid:
        t = int(time.time())
        claims = {"iss": issuer(), "sub": req.user_id, "aud": client_id, "iat": t,
                  "exp": t + ID_TOKEN_LIFETIME_S, "auth_time": code.auth_time // 1000}
        if req.nonce:
            claims["nonce"] = req.nonce
        body["id_token"] = keys.sign(claims)
    return body


def refresh(form: dict[str, str]) -> dict[str, Any]:
    client_id = form.get("client_id", "")
    if store.get_client(client_id) is None:
        raise OAuthError("invalid_client", "unknown client_id", 401)
    token = form.get("refresh_token", "")
    try:
        with transaction.atomic():
            rec = account_store.lock_refresh_token(sessions.hash_token(token)) if token else None
            oauth = store.get_session(rec.user_id, rec.device_id) if rec else None
            if rec is None or oauth is None or oauth.client_id != client_id:
                raise OAuthError("invalid_grant", "unknown refresh token")
            body = sessions.do_refresh(token)
    except MatrixError:
        raise OAuthError("invalid_grant", "unknown refresh token") from None
    return {"access_token": body["access_token"], "token_type": "Bearer",
            "expires_in": body["expires_in_ms"] // 1000, "refresh_token": body["refresh_token"],
            "scope": oauth.scope}


async def _token(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        return oauth_json(await sync_to_async(exchange_code)(form))
    if grant_type == "refresh_token":
        return oauth_json(await sync_to_async(refresh)(form))
    raise OAuthError("unsupported_grant_type", f"unsupported grant_type {grant_type!r}")


def revoke_token(token: str, client_id: str) -> None:
    """RFC 7009 section 2.2: unknown or already revoked tokens are not an error. Both the
    access and the refresh token of the session go (the device is logged out)."""
    if not token:
        raise OAuthError("invalid_request", "token is required")
    token_hash = sessions.hash_token(token)
    with transaction.atomic():
        access = account_store.lookup_access_token(token_hash)
        if access is not None:
            user_id, device_id = access.user_id, access.device_id
        else:
            refresh_rec = account_store.lock_refresh_token(token_hash)
            if refresh_rec is None:
                return
            user_id, device_id = refresh_rec.user_id, refresh_rec.device_id
        _revoke_device(user_id, device_id, reason="revoked",
                       actor=f"oauth2-client:{client_id}" if client_id else user_id)
        record(AuditAction.LOGOUT, actor=user_id, target=user_id,
               details={"device_id": device_id, "via": "oauth2_revocation"})


async def _revoke(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    hint = form.get("token_type_hint")
    if hint and hint not in ("access_token", "refresh_token"):
        raise OAuthError("unsupported_token_type", "token_type_hint must be access_token or "
                                                   "refresh_token")
    await sync_to_async(revoke_token)(form.get("token", ""), form.get("client_id", ""))
    return oauth_json({})


token = endpoint(post=_token)
revoke = endpoint(post=_revoke)
