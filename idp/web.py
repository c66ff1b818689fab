"""Helpers for the browser-facing pages of the idp app: rendering, the browser-binding cookie,
and the redirect that starts a sign-in at a provider."""

from __future__ import annotations

import secrets
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string

from idp.oidc import client, discovery
from idp.oidc.providers import get_provider
from idp.services.sso import BROWSER_COOKIE, SsoError, record_failure, start_flow

NO_STORE = "no-store"


def page(template: str, status: int = 200, **context: Any) -> HttpResponse:
    context.setdefault("server_name", settings.PALISADE.server_name)
    response = HttpResponse(render_to_string(f"idp/{template}", context), status=status,
                            content_type="text/html; charset=utf-8")
    response["Cache-Control"] = NO_STORE
    # The pages carry one-time values: never framed, never leaked through a Referer.
    response["X-Frame-Options"] = "DENY"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; " \
                                          "form-action 'self' *; frame-ancestors 'none'"
    response["Referrer-Policy"] = "no-referrer"
    return response


def error_page(err: SsoError) -> HttpResponse:
    return page("error.html", status=err.status, message=err.message, reason=err.reason)


def browser_secret(request: HttpRequest) -> tuple[str, bool]:
    """(the browser's binding secret, whether it is new and must be set as a cookie)."""
    existing = request.COOKIES.get(BROWSER_COOKIE, "")
    if 32 <= len(existing) <= 128:
        return existing, False
    return secrets.token_urlsafe(32), True


def set_browser_cookie(response: HttpResponse, secret: str) -> None:
    # SameSite=Lax: sent on the provider's top-level redirect back to the callback, never on
    # cross-site subrequests. HttpOnly: no script reads it.
    response.set_cookie(BROWSER_COOKIE, secret, max_age=3600, httponly=True, samesite="Lax",
                        secure=settings.PALISADE.public_baseurl.startswith("https://"), path="/")


async def redirect_to_provider(request: HttpRequest, provider_id: str, *, purpose: str,
                               redirect_url: str = "", oauth_request_id: int | None = None,
                               secret: str | None = None) -> HttpResponse:
    """Start a flow and send the browser to the provider's authorization endpoint. `secret`:
    the browser binding the caller already chose (and sets as the cookie itself)."""
    provider = get_provider(provider_id)
    if secret is None:
        secret, new = browser_secret(request)
    else:
        new = False
    try:
        meta = await discovery.metadata(provider.issuer)
        flow = await sync_to_async(start_flow)(provider.id, purpose=purpose,
                                               browser_secret=secret, redirect_url=redirect_url,
                                               oauth_request_id=oauth_request_id)
        url = await client.authorization_url(provider, meta, state=flow.state, nonce=flow.nonce,
                                             code_verifier=flow.code_verifier)
    except discovery.ProviderUnavailable as e:
        await sync_to_async(record_failure)("provider_unavailable", provider_id=provider.id,
                                            purpose=purpose, extra={"error": str(e)[:200]})
        return error_page(SsoError("provider_unavailable", "The identity provider cannot be "
                                   "reached right now. Please try again later.", 502))
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = NO_STORE
    if new:
        set_browser_cookie(response, secret)
    return response
