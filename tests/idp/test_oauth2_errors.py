"""The OAuth 2.0 API's refusals: client registration (spec "Redirect URI validation"), the
authorization endpoint (page for a bad client or redirect URI, error redirect otherwise) and
the token and revocation endpoints (RFC 6749 section 5.2, RFC 7009)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from idp.models import OAuthClient, OAuthRequest
from idp.oauth2.authorize import redirect_uri_matches
from idp.oauth2.scope import ScopeError, parse_scope
from tests.idp.conftest import url_of

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def register(base: str, **meta: Any) -> httpx.Response:
    body = {"client_name": "Test", "client_uri": "https://app.example.com/",
            "redirect_uris": ["https://app.example.com/cb"], "application_type": "web",
            "token_endpoint_auth_method": "none", "response_types": ["code"],
            "grant_types": ["authorization_code", "refresh_token"], **meta}
    return httpx.post(f"{base}/_palisade/oauth2/register", json=body)


@pytest.mark.parametrize(("meta", "error"), [
    ({"redirect_uris": ["http://app.example.com/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://evil.example.net/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://app.example.com/cb#frag"]}, "invalid_redirect_uri"),
    ({"application_type": "native", "redirect_uris": ["http://localhost:1234/cb"]},
     "invalid_redirect_uri"),
    ({"application_type": "native", "redirect_uris": ["com.example.app://cb"]},
     "invalid_redirect_uri"),
    ({"application_type": "native", "redirect_uris": ["example:/cb"]}, "invalid_redirect_uri"),
    ({"client_uri": "http://app.example.com/"}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": "client_secret_basic"}, "invalid_client_metadata"),
    ({"redirect_uris": []}, "invalid_redirect_uri"),
])
def test_registration_refuses_bad_metadata(meta: dict, error: str, sso: Any,
                                           live_server: Any) -> None:
    resp = register(url_of(live_server), **meta)
    assert resp.status_code == 400
    assert resp.json()["error"] == error
    assert not OAuthClient.objects.exists()


def test_registration_accepts_the_spec_examples(sso: Any, live_server: Any) -> None:
    base = url_of(live_server)
    resp = register(base, grant_types=["authorization_code", "refresh_token",
                                       "urn:ietf:params:oauth:grant-type:token-exchange"])
    assert resp.status_code == 201
    assert resp.json()["grant_types"] == ["authorization_code", "refresh_token"]
    native = register(base, application_type="native", client_uri="https://example.com/",
                      redirect_uris=[
        "com.example.app:/callback", "com.example:/", "http://127.0.0.1/callback",
        "http://[::1]/callback", "http://localhost/callback"])
    assert native.status_code == 201, native.text


def authorize(base: str, client_id: str, **params: str) -> httpx.Response:
    query = {"response_type": "code", "client_id": client_id,
             "redirect_uri": "https://app.example.com/cb", "state": "st4te",
             "scope": "urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJ",
             "code_challenge": CHALLENGE, "code_challenge_method": "S256", **params}
    return httpx.get(f"{base}/_palisade/oauth2/authorize?{urlencode(query)}")


def test_authorization_errors(sso: Any, live_server: Any) -> None:
    base = url_of(live_server)
    client_id = register(base).json()["client_id"]
    page = authorize(base, "nobody")
    assert page.status_code == 400 and "not registered" in page.text
    page = authorize(base, client_id, redirect_uri="https://app.example.com/other")
    assert page.status_code == 400 and "did not register" in page.text
    for params, error in [
        ({"scope": "urn:matrix:client:api:*"}, "invalid_scope"),
        ({"scope": "urn:matrix:client:api:* urn:matrix:client:device:A1234 "
                   "urn:matrix:client:device:B1234"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"prompt": "none"}, "login_required"),
    ]:
        resp = authorize(base, client_id, **params)
        assert resp.status_code == 302, params
        query = parse_qs(urlsplit(resp.headers["Location"]).query)
        assert query["error"] == [error] and query["state"] == ["st4te"], params
    fragment = authorize(base, client_id, scope="bad", response_mode="fragment")
    assert "#error=invalid_scope" in fragment.headers["Location"]
    assert not OAuthRequest.objects.exists()
    ok = authorize(base, client_id)
    assert ok.status_code == 302 and ok.headers["Location"].startswith(sso_issuer())
    assert OAuthRequest.objects.count() == 1


def sso_issuer() -> str:
    from django.conf import settings

    return settings.PALISADE.oidc_providers[0].issuer


def test_token_and_revocation_errors(sso: Any, live_server: Any) -> None:
    base = url_of(live_server)
    client_id = register(base).json()["client_id"]
    token_url = f"{base}/_palisade/oauth2/token"
    resp = httpx.post(token_url, data={"grant_type": "authorization_code", "code": "nope",
                                       "client_id": client_id, "code_verifier": "x" * 43,
                                       "redirect_uri": "https://app.example.com/cb"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    assert resp.headers["Cache-Control"] == "no-store"
    resp = httpx.post(token_url, data={"grant_type": "password", "client_id": client_id})
    assert resp.json()["error"] == "unsupported_grant_type"
    resp = httpx.post(token_url, data={"grant_type": "refresh_token", "refresh_token": "x",
                                       "client_id": client_id})
    assert resp.json()["error"] == "invalid_grant"
    resp = httpx.post(token_url, data={"grant_type": "authorization_code", "code": "x",
                                       "client_id": "nobody"})
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    revoke = f"{base}/_palisade/oauth2/revoke"
    assert httpx.post(revoke, data={"token": "unknown", "client_id": client_id}).status_code \
        == 200
    assert httpx.post(revoke, data={"client_id": client_id}).status_code == 400
    cors = httpx.options(token_url)
    assert cors.headers["Access-Control-Allow-Origin"] == "*"


def test_scope_and_redirect_rules_unit() -> None:
    scope = parse_scope("openid urn:matrix:org.matrix.msc2967.client:api:* "
                        "urn:matrix:org.matrix.msc2967.client:device:AbC-123_x")
    assert (scope.device_id, scope.openid) == ("AbC-123_x", True)
    for bad in ("", "openid", "urn:matrix:client:api:* urn:matrix:client:device:ab",
                "urn:matrix:client:api:* urn:matrix:client:device:ABCDEF other"):
        with pytest.raises(ScopeError):
            parse_scope(bad)
    registered = ["http://127.0.0.1/callback", "https://app.example.com/cb"]
    assert redirect_uri_matches(registered, "http://127.0.0.1:5173/callback")
    assert redirect_uri_matches(registered, "https://app.example.com/cb")
    assert not redirect_uri_matches(registered, "http://127.0.0.1:5173/other")
    assert not redirect_uri_matches(registered, "https://app.example.com:8443/cb")
    assert not redirect_uri_matches(registered, "http://127.0.0.2:5173/callback")
