"""GET /_matrix/client/v3/login/sso/redirect[/{idpId}]: start a single sign-on.

Spec: client-server API "SSO client login" ("Redirecting to the Authentication server"), and
sso_login_redirect.yaml (redirectUrl required; action login|register, v1.18; an unknown IdP is
404 with "a user-friendly page"). A person's browser is looking, so errors are pages.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

from django.http import HttpRequest, HttpResponse

from idp.oidc.providers import UnknownProvider, all_providers, get_provider, public_url
from idp.services.sso import SsoError
from idp.web import error_page, page, redirect_to_provider

MAX_REDIRECT_URL = 2048


def _check_redirect_url(request: HttpRequest) -> str:
    url = request.GET.get("redirectUrl", "")
    if not url:
        raise SsoError("missing_redirect_url", "The app did not say where to return after "
                                               "signing in (redirectUrl is missing).")
    parts = urlsplit(url)
    if len(url) > MAX_REDIRECT_URL or not parts.scheme or parts.scheme.lower() in (
            "javascript", "data", "vbscript", "file"):
        raise SsoError("bad_redirect_url", "The app's return address is not acceptable.")
    action = request.GET.get("action")
    if action is not None and action not in ("login", "register"):
        raise SsoError("bad_action", "Unknown sign-in action.")
    return url


async def sso_redirect(request: HttpRequest, idp_id: str | None = None) -> HttpResponse:
    try:
        redirect_url = _check_redirect_url(request)
        providers = all_providers()
        if not providers:
            raise SsoError("sso_disabled", "Single sign-on is not enabled on this server.", 404)
        if idp_id is None and len(providers) > 1:
            return page("pick.html", providers=[
                {"id": p.id, "name": p.name,
                 "url": public_url(f"_matrix/client/v3/login/sso/redirect/{quote(p.id)}?")
                 + urlencode({"redirectUrl": redirect_url})} for p in providers])
        try:
            provider = get_provider(idp_id) if idp_id is not None else providers[0]
        except UnknownProvider:
            raise SsoError("unknown_idp", "This server has no identity provider by that name.",
                           404) from None
        if provider.allowed_redirect_urls and not any(
                redirect_url.startswith(p) for p in provider.allowed_redirect_urls):
            raise SsoError("redirect_url_not_allowed", "This identity provider may not be used "
                                                       "to sign in to that app.", 403)
    except SsoError as e:
        return error_page(e)
    return await redirect_to_provider(request, provider.id, purpose="login",
                                      redirect_url=redirect_url)
