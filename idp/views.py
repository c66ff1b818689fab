"""The relying party's endpoints under /_palisade/: the one callback every provider redirects
to, the confirmation of an untrusted redirectUrl, the back-channel logout and security-event
receivers, and the start of staff SSO for the admin UI (docs/oidc.md lists them for operators).
"""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from idp.oidc import discovery
from idp.oidc.callback import identify, provider_error
from idp.oidc.jwt_checks import (
    TokenRejected,
    check_common,
    check_logout_token,
    verify_signature,
)
from idp.oidc.providers import UnknownProvider, get_provider, public_url
from idp.services.provider_events import do_backchannel_logout, do_security_event
from idp.services.sso import (
    BROWSER_COOKIE,
    SsoError,
    claim_flow,
    confirm_client_login,
    finish_client_login,
    record_failure,
    refuse,
)
from idp.services.staff import staff_login
from idp.web import NO_STORE, error_page, page, redirect_to_provider

CONFIRM_PATH = "_palisade/sso/confirm"


def redirect_anywhere(url: str) -> HttpResponse:
    """A 302 to the client's redirectUrl, which may use a native app's private scheme (Django's
    HttpResponseRedirect allows only http, https and ftp)."""
    response = HttpResponse(status=302)
    response["Location"] = url
    response["Cache-Control"] = NO_STORE
    return response


@require_GET
async def callback(request: HttpRequest) -> HttpResponse:
    """Spec: client-server API "SSO client login", "Handling the callback from the
    Authentication server"."""
    try:
        flow = await sync_to_async(claim_flow)(request.GET.get("state", ""),
                                               request.COOKIES.get(BROWSER_COOKIE, ""))
        if request.GET.get("error"):
            raise await sync_to_async(provider_error)(flow, request.GET["error"])
        code = request.GET.get("code", "")
        if not code:
            raise await sync_to_async(refuse)(flow, "missing_code", "The identity provider sent "
                                              "no authorization code.", 400)
        ident = await identify(flow, code)
        if flow.purpose == "admin":
            return HttpResponseRedirect(await sync_to_async(staff_login)(request, flow, ident))
        if flow.purpose == "oauth2":
            from idp.oauth2.authorize import after_upstream_login

            return await after_upstream_login(request, flow, ident)
        done = await sync_to_async(finish_client_login)(
            flow, ident.provider, issuer=ident.issuer, subject=ident.subject,
            claims=ident.claims, sid=ident.sid)
    except SsoError as e:
        return error_page(e)
    if done.redirect:
        return redirect_anywhere(done.redirect)
    return page("confirm.html", user_id=done.user_id, client_host=_host(flow.redirect_url),
                flow=done.flow_pk, confirm=done.confirm_token, action=public_url(CONFIRM_PATH))


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.netloc or f"{parts.scheme}:"


@csrf_exempt  # the one-time confirmation token bound to this browser is the CSRF guard
@require_POST
async def confirm(request: HttpRequest) -> HttpResponse:
    try:
        flow_pk = int(request.POST.get("flow", "0"))
    except ValueError:
        flow_pk = 0
    try:
        url = await sync_to_async(confirm_client_login)(
            flow_pk, request.POST.get("confirm", ""), request.COOKIES.get(BROWSER_COOKIE, ""))
    except SsoError as e:
        return error_page(e)
    return redirect_anywhere(url)


def _json_error(status: int, error: str, description: str) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = NO_STORE
    return response


@csrf_exempt
@require_POST
async def backchannel_logout(request: HttpRequest, provider_id: str) -> HttpResponse:
    """OpenID Connect Back-Channel Logout 1.0 section 2.5-2.8: a form-encoded logout_token;
    200 when done, 400 invalid_request otherwise; never cached."""
    try:
        provider = get_provider(provider_id)
    except UnknownProvider:
        return _json_error(404, "invalid_request", "unknown provider")
    token = request.POST.get("logout_token", "")
    try:
        meta = await discovery.metadata(provider.issuer)
        _, claims = await verify_signature(token, meta.jwks_uri, provider.id_token_algorithms)
        sub, sid = check_logout_token(claims, issuer=provider.issuer,
                                      client_id=provider.client_id, now=time.time(),
                                      leeway=provider.clock_skew_seconds)
        await sync_to_async(do_backchannel_logout)(provider, claims, sub=sub, sid=sid)
    except TokenRejected as e:
        await sync_to_async(record_failure)(e.reason, provider_id=provider.id,
                                            purpose="backchannel_logout")
        return _json_error(400, "invalid_request", e.message)
    except discovery.ProviderUnavailable:
        return _json_error(503, "temporarily_unavailable", "provider keys unavailable")
    response = HttpResponse(status=200)
    response["Cache-Control"] = NO_STORE
    return response


@csrf_exempt
@require_POST
async def security_events(request: HttpRequest, provider_id: str) -> HttpResponse:
    """RFC 8935 push delivery of security event tokens (RFC 8417): 202 when accepted, 400 with
    {"err", "description"} otherwise."""
    try:
        provider = get_provider(provider_id)
    except UnknownProvider:
        return JsonResponse({"err": "invalid_request", "description": "unknown provider"},
                            status=404)
    token = request.body.decode("ascii", "replace").strip()
    try:
        meta = await discovery.metadata(provider.issuer)
        _, claims = await verify_signature(token, meta.jwks_uri, provider.id_token_algorithms)
        check_common(claims, issuer=provider.issuer, audience=provider.client_id,
                     now=time.time(), leeway=provider.clock_skew_seconds, require_exp=False)
        await sync_to_async(do_security_event)(provider, claims)
    except TokenRejected as e:
        await sync_to_async(record_failure)(e.reason, provider_id=provider.id,
                                            purpose="security_event")
        err = "invalid_key" if e.reason in ("bad_signature", "unknown_key") else "invalid_request"
        return JsonResponse({"err": err, "description": e.message}, status=400)
    except discovery.ProviderUnavailable:
        return JsonResponse({"err": "invalid_request", "description": "keys unavailable"},
                            status=503)
    return HttpResponse(status=202)


@require_GET
async def admin_sso(request: HttpRequest, provider_id: str) -> HttpResponse:
    try:
        provider = get_provider(provider_id)
    except UnknownProvider:
        provider = None
    if provider is None or not provider.staff_login:
        return error_page(SsoError("unknown_idp", "This identity provider is not enabled for "
                                                  "the admin UI.", 404))
    return await redirect_to_provider(request, provider.id, purpose="admin")
