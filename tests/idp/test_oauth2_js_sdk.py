"""The Matrix OAuth 2.0 API end to end with a real client library: matrix-js-sdk's OIDC helpers
under Node (tests/idp/node/oauth_client.mjs) discover the server (auth_metadata), register a
native client dynamically, authorise with PKCE through the browser (upstream sign-in at the
real OpenID provider, then our consent page), exchange the code, refresh and revoke."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
import pytest

from audit.actions import AuditAction
from audit.models import AuditRecord
from idp.models import OAuthClient, OAuthSession
from tests.idp.conftest import NODE_DIR, new_page, node_ready, op_sign_in, url_of

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def start_client(base: str) -> subprocess.Popen:
    node_ready()
    return subprocess.Popen(["node", str(NODE_DIR / "oauth_client.mjs"), base], cwd=NODE_DIR,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_line(proc: subprocess.Popen) -> dict:
    """The client's next protocol line ("@@ {json}"), skipping the SDK's own logging."""
    assert proc.stdout is not None
    seen = []
    while True:
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=30)
            stderr = proc.stderr.read() if proc.stderr else ""
            raise AssertionError("client exited:\n" + "".join(seen[-30:]) + stderr)
        if line.startswith("@@ "):
            return json.loads(line[3:])
        seen.append(line)


def test_auth_metadata_has_the_required_fields(sso: Any, live_server: Any) -> None:
    resp = httpx.get(f"{url_of(live_server)}/_matrix/client/v1/auth_metadata")
    assert resp.status_code == 200
    meta = resp.json()
    for key in ("issuer", "authorization_endpoint", "token_endpoint", "revocation_endpoint",
                "registration_endpoint", "response_types_supported", "grant_types_supported",
                "response_modes_supported", "code_challenge_methods_supported"):
        assert key in meta, key
    assert {"authorization_code", "refresh_token"} <= set(meta["grant_types_supported"])
    assert {"query", "fragment"} <= set(meta["response_modes_supported"])
    assert meta["code_challenge_methods_supported"] == ["S256"]


def test_auth_metadata_is_unrecognized_without_providers(settings: Any,
                                                         live_server: Any) -> None:
    resp = httpx.get(f"{url_of(live_server)}/_matrix/client/v1/auth_metadata")
    assert resp.status_code == 404
    assert resp.json()["errcode"] == "M_UNRECOGNIZED"


def test_matrix_js_sdk_logs_in_refreshes_and_revokes(sso: Any, browser: Any,
                                                    live_server: Any) -> None:
    base = url_of(live_server)
    proc = start_client(base)
    try:
        authorize_url = read_line(proc)["authorize_url"]
        assert authorize_url.startswith(f"{base}/_palisade/oauth2/authorize?")
        page = new_page(browser)
        page.goto(authorize_url)
        op_sign_in(page, "alice")
        page.wait_for_selector("#consent-allow")
        assert "matrix-js-sdk test client" in page.content()
        device_id = page.locator("#consent-device").inner_text()
        page.click("#consent-allow")
        page.wait_for_selector("#client-done")  # the client's own loopback listener
        result = read_line(proc)["result"]
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert "error" not in result, result
    user_id = result["whoami"]["user_id"]
    assert user_id.startswith("@alice")
    assert result["whoami"]["device_id"] == device_id == result["device_id"]
    assert result["id_token_sub"] == user_id
    assert result["refreshed"] is True
    assert result["whoami_after_refresh"]["user_id"] == user_id
    assert result["after_revoke"] == "M_UNKNOWN_TOKEN"
    resp = httpx.get(f"{base}/_matrix/client/v3/account/whoami",
                     headers={"Authorization": f"Bearer {result['access_token']}"})
    assert resp.status_code == 401 and resp.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert OAuthClient.objects.filter(client_id=result["client_id"]).exists()
    assert not OAuthSession.objects.filter(user_id=user_id).exists()  # revoked
    actions = list(AuditRecord.objects.filter(target=user_id).values_list("action", flat=True))
    assert AuditAction.OAUTH_CONSENT_GRANTED in actions
    assert AuditAction.OAUTH_SESSION_REVOKED in actions
    page.context.close()


def test_consent_denied_sends_access_denied(sso: Any, browser: Any, live_server: Any) -> None:
    base = url_of(live_server)
    proc = start_client(base)
    try:
        page = new_page(browser)
        page.goto(read_line(proc)["authorize_url"])
        op_sign_in(page, "alice")
        page.click("#consent-deny")
        page.wait_for_selector("#client-done")
        result = read_line(proc)["result"]
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert result["error"] == "access_denied"
    assert not OAuthSession.objects.exists()
    page.context.close()
