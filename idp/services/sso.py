"""The relying-party side of a sign-in, around the provider round trip: starting a flow
(state, nonce, PKCE verifier, bound to the browser by a cookie), claiming it at the callback
(known, unexpired, same browser, first use), and finishing a Matrix client login (a login token
for the client's redirectUrl, after the user's confirmation when that URL is not whitelisted).

Spec: client-server API "SSO client login" ("Redirecting to the Authentication server",
"Handling the callback", "Security considerations" 1 and 2) and "POST /login" m.login.token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.config import OidcProviderConfig
from homeserver.services.accounts.sessions import now_ms
from idp import store
from idp.oidc.providers import sso_config
from idp.services.provisioning import (
    ProvisioningRefused,
    SignedIn,
    after_commit,
    sign_in,
    subject_ref,
)

BROWSER_COOKIE = "palisade_sso_browser"
LOGIN_TOKEN_PREFIX = "palt_"


class SsoError(Exception):
    """A sign-in that cannot go on; rendered as a page (never JSON: a person is looking)."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def record_failure(reason: str, *, provider_id: str = "", purpose: str = "login",
                   user_id: str = "", extra: dict[str, Any] | None = None) -> None:
    """LOGIN_FAILED for a refused sign-in, in its own transaction (nothing else is written)."""
    with transaction.atomic():
        record(AuditAction.LOGIN_FAILED, actor=user_id or f"sso:{provider_id or 'unknown'}",
               target=user_id, details={"method": "m.login.sso", "provider": provider_id,
                                        "purpose": purpose, "reason": reason, **(extra or {})})


@dataclass(frozen=True)
class FlowStart:
    state: str
    nonce: str
    code_verifier: str


def start_flow(provider_id: str, *, purpose: str, browser_secret: str, redirect_url: str = "",
               oauth_request_id: int | None = None) -> FlowStart:
    start = FlowStart(secrets.token_urlsafe(32), secrets.token_urlsafe(24),
                      secrets.token_urlsafe(48))
    now = now_ms()
    with transaction.atomic():
        store.purge_flows(now)
        store.create_flow(state_hash=digest(start.state), browser_hash=digest(browser_secret),
                          provider_id=provider_id, purpose=purpose, nonce=start.nonce,
                          code_verifier=start.code_verifier, redirect_url=redirect_url,
                          oauth_request_id=oauth_request_id, now=now,
                          expires=now + sso_config().flow_lifetime_seconds * 1000)
    return start


def claim_flow(state: str, browser_secret: str) -> store.FlowRecord:
    """The flow `state` names, if this browser started it and this is the state's first use.
    A refusal is audited and leaves the flow spent."""
    flow = store.get_flow_by_state(digest(state)) if state else None
    if flow is None:
        record_failure("unknown_state")
        raise SsoError("unknown_state", "This sign-in link is not valid or has been tampered "
                                        "with. Please start signing in again from your app.")
    now = now_ms()
    first_use = store.mark_flow_called_back(flow.pk, now)
    if not browser_secret or digest(browser_secret) != flow.browser_hash:
        record_failure("other_browser", provider_id=flow.provider_id, purpose=flow.purpose)
        raise SsoError("other_browser", "This sign-in was started in a different browser. For "
                                        "your safety it can only be finished in the browser "
                                        "where it began. Please start again.", 403)
    if not first_use:
        record_failure("replayed_state", provider_id=flow.provider_id, purpose=flow.purpose)
        raise SsoError("replayed_state", "This sign-in has already been used. Please start "
                                         "signing in again from your app.")
    if flow.expires_ts < now:
        record_failure("expired_flow", provider_id=flow.provider_id, purpose=flow.purpose)
        raise SsoError("expired_flow", "This sign-in took too long. Please start again.")
    return flow


def refuse(flow: store.FlowRecord, reason: str, message: str, status: int = 403,
           extra: dict[str, Any] | None = None) -> SsoError:
    record_failure(reason, provider_id=flow.provider_id, purpose=flow.purpose, extra=extra)
    return SsoError(reason, message, status)


def sign_in_user(flow: store.FlowRecord, provider: OidcProviderConfig, *, issuer: str,
                 subject: str, claims: dict[str, Any], sid: str,
                 then: Any = None) -> tuple[SignedIn, Any]:
    """Provision/link the account and audit the provider-side login; `then(signed_in)` runs in
    the same transaction (the purpose's next step). A refusal writes nothing but its audit
    record."""
    try:
        with transaction.atomic():
            signed = sign_in(provider, issuer=issuer, subject=subject, claims=claims)
            record(AuditAction.LOGIN_SUCCEEDED, actor=signed.user_id, target=signed.user_id,
                   details={"method": "m.login.sso", "stage": "provider",
                            "provider": provider.id, "purpose": flow.purpose,
                            "subject_ref": subject_ref(issuer, subject),
                            "provisioned": signed.created,
                            "displayname_updated": signed.displayname is not None})
            result = then(signed) if then is not None else None
    except ProvisioningRefused as e:
        raise refuse(flow, e.reason, e.message, extra=e.details) from None
    after_commit(signed)
    return signed, result


def is_whitelisted(url: str) -> bool:
    return any(url.startswith(prefix) for prefix in sso_config().client_whitelist)


def with_login_token(url: str, token: str) -> str:
    """Spec: "Handling the callback" step 4: existing loginToken parameters are replaced."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k != "loginToken"]
    query.append(("loginToken", token))
    return urlunsplit(parts._replace(query=urlencode(query)))


def mint_login_token(user_id: str, *, provider_id: str, subject: str, sid: str) -> str:
    """A short-lived, single-use m.login.token (inside the caller's transaction)."""
    token = LOGIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.insert_login_token(token_hash=digest(token), user_id=user_id, provider_id=provider_id,
                             subject=subject, sid=sid,
                             expires=now_ms() + sso_config().login_token_lifetime_seconds * 1000)
    return token


@dataclass(frozen=True)
class LoginDone:
    user_id: str
    redirect: str = ""       # redirect here (whitelisted client) ...
    confirm_token: str = ""  # ... or show the confirmation page with this token
    flow_pk: int = 0


def finish_client_login(flow: store.FlowRecord, provider: OidcProviderConfig, *, issuer: str,
                        subject: str, claims: dict[str, Any], sid: str) -> LoginDone:
    def then(signed: SignedIn) -> LoginDone:
        if is_whitelisted(flow.redirect_url):
            token = mint_login_token(signed.user_id, provider_id=provider.id, subject=subject,
                                     sid=sid)
            return LoginDone(signed.user_id, redirect=with_login_token(flow.redirect_url, token))
        confirm = secrets.token_urlsafe(24)
        store.set_flow_user(flow.pk, user_id=signed.user_id, subject=subject, sid=sid,
                            confirm_hash=digest(confirm))
        return LoginDone(signed.user_id, confirm_token=confirm, flow_pk=flow.pk)

    _, done = sign_in_user(flow, provider, issuer=issuer, subject=subject, claims=claims,
                           sid=sid, then=then)
    return done


def confirm_client_login(flow_pk: int, confirm_token: str, browser_secret: str) -> str:
    """The user confirmed handing their account to the redirectUrl: the URL with a fresh
    login token. The confirmation is single use and bound to the same browser."""
    flow = store.get_flow(flow_pk)
    if (flow is None or not flow.confirm_hash or not confirm_token
            or digest(confirm_token) != flow.confirm_hash
            or digest(browser_secret or "") != flow.browser_hash):
        record_failure("bad_confirmation")
        raise SsoError("bad_confirmation", "This confirmation is not valid. Please start "
                                           "signing in again from your app.", 403)
    if flow.expires_ts < now_ms():
        raise refuse(flow, "expired_flow", "This sign-in took too long. Please start again.", 400)
    with transaction.atomic():
        if not store.mark_flow_confirmed(flow.pk, now_ms()):
            raise SsoError("replayed_confirmation", "This sign-in has already been confirmed.")
        token = mint_login_token(flow.user_id, provider_id=flow.provider_id,
                                 subject=flow.subject, sid=flow.sid)
        record(AuditAction.LOGIN_SUCCEEDED, actor=flow.user_id, actor_type=ActorType.USER,
               target=flow.user_id, details={"method": "m.login.sso", "stage": "confirmed",
                                             "provider": flow.provider_id,
                                             "client_host": urlsplit(flow.redirect_url).netloc})
    return with_login_token(flow.redirect_url, token)
