"""The authorization endpoint. Spec: client-server API "Authorisation code flow" and
"Authorisation code grant" (RFC 6749 section 4.1, PKCE S256 required, strict pre-registered
redirect URIs, `query` or `fragment` response mode). The user authenticates at an upstream
OpenID provider (the same flows as SSO login, purpose "oauth2"), then consents on our page;
the code goes to the redirect URI.

Errors about the client or its redirect URI are shown as a page (never redirected: RFC 6749
section 4.1.2.1); the others go back to the client as error= parameters.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from asgiref.sync import sync_to_async
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from audit.actions import AuditAction
from audit.log import record
from homeserver.services.accounts.sessions import now_ms
from idp.oauth2 import store
from idp.oauth2.scope import ScopeError, parse_scope
from idp.oidc.callback import ProviderIdentity
from idp.oidc.providers import all_providers, oauth2_enabled, public_url
from idp.services.sso import BROWSER_COOKIE, SsoError, digest, sign_in_user
from idp.web import browser_secret, error_page, page, redirect_to_provider, set_browser_cookie

REQUEST_LIFETIME_MS = 15 * 60 * 1000
CODE_LIFETIME_MS = 60 * 1000
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def redirect_uri_matches(registered: list[str], requested: str) -> bool:
    """Exact match, except that a native client's loopback URI registered without a port
    matches any port (spec "Redirect URI validation", native clients, 2.)."""
    if requested in registered:
        return True
    req = urlsplit(requested)
    if req.scheme != "http" or req.hostname is None:
        return False
    for uri in registered:
        reg = urlsplit(uri)
        if (reg.scheme == "http" and reg.netloc in LOOPBACK and reg.port is None
                and f"{req.hostname}" == reg.hostname and req.port is not None
                and (req.path, req.query) == (reg.path, reg.query)):
            return True
    return False


def to_client(redirect_uri: str, mode: str, params: dict[str, str]) -> HttpResponse:
    sep = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    response = HttpResponse(status=302)
    response["Location"] = redirect_uri + sep + urlencode(params)
    response["Cache-Control"] = "no-store"
    return response


def _client_error(message: str) -> HttpResponse:
    return error_page(SsoError("invalid_client", message, 400))


async def authorize(request: HttpRequest) -> HttpResponse:
    if not oauth2_enabled():
        return error_page(SsoError("oauth2_disabled", "The OAuth 2.0 API is not enabled.", 404))
    q = request.GET
    client = await sync_to_async(store.get_client)(q.get("client_id", ""))
    if client is None:
        return _client_error("This application is not registered with this server.")
    redirect_uri = q.get("redirect_uri", "")
    if not redirect_uri_matches(client.metadata["redirect_uris"], redirect_uri):
        return _client_error("This application asked to return to an address it did not "
                             "register.")
    mode = q.get("response_mode", "query")
    state = q.get("state", "")

    def fail(error: str, description: str) -> HttpResponse:
        params = {"error": error, "error_description": description}
        if state:
            params["state"] = state
        return to_client(redirect_uri, mode if mode in ("query", "fragment") else "query",
                         params)

    if mode not in ("query", "fragment"):
        return fail("invalid_request", "response_mode must be query or fragment")
    if q.get("response_type") != "code":
        return fail("unsupported_response_type", "only response_type=code is supported")
    challenge = q.get("code_challenge", "")
    if q.get("code_challenge_method") != "S256" or not 43 <= len(challenge) <= 128:
        return fail("invalid_request", "PKCE with code_challenge_method=S256 is required")
    if q.get("prompt") == "none":
        return fail("login_required", "interactive sign-in is required")
    try:
        scope = parse_scope(q.get("scope", ""))
    except ScopeError as e:
        return fail("invalid_scope", str(e))
    secret, new = browser_secret(request)
    now = now_ms()
    request_id = secrets.token_urlsafe(24)
    pk = await sync_to_async(_create)(
        request_id=request_id, client_id=client.client_id, redirect_uri=redirect_uri,
        scope=str(scope), device_id=scope.device_id, state=state[:2048],
        nonce=q.get("nonce", "")[:255], code_challenge=challenge, response_mode=mode,
        browser_hash=digest(secret), now=now, expires=now + REQUEST_LIFETIME_MS)
    providers = all_providers()
    if len(providers) == 1:
        response = await redirect_to_provider(request, providers[0].id, purpose="oauth2",
                                              oauth_request_id=pk, secret=secret)
    else:
        response = page("pick.html", providers=[
            {"id": p.id, "name": p.name,
             "url": public_url(f"_palisade/oauth2/upstream/{quote(p.id)}?")
             + urlencode({"request": request_id})} for p in providers])
    if new:
        set_browser_cookie(response, secret)
    return response


def _create(**fields: Any) -> int:
    with transaction.atomic():
        store.purge(fields["now"])
        return store.create_request(**fields)


async def upstream(request: HttpRequest, provider_id: str) -> HttpResponse:
    """The provider the user picked when several are configured."""
    req = await sync_to_async(store.get_request)(request_id=request.GET.get("request", ""))
    secret = request.COOKIES.get(BROWSER_COOKIE, "")
    if req is None or req.done_ts is not None or digest(secret) != req.browser_hash or \
            provider_id not in {p.id for p in all_providers()}:
        return error_page(SsoError("unknown_request", "This sign-in request is not valid. "
                                                      "Please start again from your app."))
    return await redirect_to_provider(request, provider_id, purpose="oauth2",
                                      oauth_request_id=req.pk)


async def after_upstream_login(request: HttpRequest, flow: Any,
                               ident: ProviderIdentity) -> HttpResponse:
    """The upstream provider said who this is: provision/link the account, then ask the user
    to consent to the client."""
    req = await sync_to_async(store.get_request)(pk=flow.oauth_request_id)
    if req is None or req.done_ts is not None or req.expires_ts < now_ms():
        raise SsoError("unknown_request", "This sign-in request has expired. Please start "
                                          "again from your app.")
    consent = secrets.token_urlsafe(24)

    def then(signed: Any) -> None:
        store.set_request_user(req.pk, user_id=signed.user_id, provider_id=ident.provider.id,
                               subject=ident.subject, sid=ident.sid,
                               consent_hash=digest(consent))

    signed, _ = await sync_to_async(sign_in_user)(
        flow, ident.provider, issuer=ident.issuer, subject=ident.subject, claims=ident.claims,
        sid=ident.sid, then=then)
    client = await sync_to_async(store.get_client)(req.client_id)
    assert client is not None
    return page("consent.html", user_id=signed.user_id, request_id=req.request_id,
                consent=consent, device_id=req.device_id,
                client_name=client.metadata.get("client_name") or client.client_id,
                client_uri=client.metadata["client_uri"],
                redirect_host=urlsplit(req.redirect_uri).netloc or req.redirect_uri,
                action=public_url("_palisade/oauth2/consent"))


def _decide(request_id: str, consent: str, secret: str, allow: bool) -> tuple[Any, str]:
    req = store.get_request(request_id=request_id)
    if (req is None or not req.consent_hash or digest(consent) != req.consent_hash
            or digest(secret) != req.browser_hash):
        raise SsoError("bad_consent", "This consent is not valid. Please start again from "
                                      "your app.", 403)
    now = now_ms()
    if req.expires_ts < now:
        raise SsoError("expired_request", "This sign-in request has expired.")
    with transaction.atomic():
        if not store.finish_request(req.pk, now):
            raise SsoError("replayed_consent", "This request was already answered.")
        if not allow:
            return req, ""
        code = secrets.token_urlsafe(32)
        store.create_code(code_hash=digest(code), request_pk=req.pk, auth_time=now,
                          expires=now + CODE_LIFETIME_MS)
        record(AuditAction.OAUTH_CONSENT_GRANTED, actor=req.user_id, target=req.user_id,
               details={"client_id": req.client_id, "device_id": req.device_id,
                        "provider": req.provider_id})
    return req, code


@csrf_exempt  # the one-time consent token bound to this browser is the CSRF guard
async def consent(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return error_page(SsoError("bad_method", "Use the consent form.", 405))
    try:
        req, code = await sync_to_async(_decide)(
            request.POST.get("request", ""), request.POST.get("consent", ""),
            request.COOKIES.get(BROWSER_COOKIE, ""), request.POST.get("decision") == "allow")
    except SsoError as e:
        return error_page(e)
    params = {"code": code} if code else {"error": "access_denied",
                                          "error_description": "The user denied the request."}
    if req.state:
        params["state"] = req.state
    return to_client(req.redirect_uri, req.response_mode, params)
