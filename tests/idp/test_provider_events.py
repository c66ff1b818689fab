"""What the provider tells us behind the user's back: OpenID Back-Channel Logout 1.0 sent by
the real provider when the user signs out there (the devices' tokens become M_UNKNOWN_TOKEN),
refused logout tokens, and deprovisioning by a security event token."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from audit.actions import AuditAction
from audit.models import AuditRecord
from homeserver.models import Account, Device
from tests.accounts.conftest import audit_head
from tests.idp.conftest import (
    ACCOUNTS,
    CLIENT_HOST,
    V3,
    login_token_from,
    refused,
    sign_in,
    sso_url,
    token_login,
    url_of,
    wait_until,
)

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
PURGED = "https://schemas.openid.net/secevent/risc/event-type/account-purged"


def whoami(base: str, token: str) -> httpx.Response:
    return httpx.get(f"{base}{V3}/account/whoami", headers={"Authorization": f"Bearer {token}"})


def test_backchannel_logout_sent_by_the_provider_logs_the_devices_out(
        sso: Any, op: Any, browser: Any, live_server: Any) -> None:
    base = url_of(live_server)
    page, url = sign_in(browser, base, "alice")
    first = token_login(base, login_token_from(url)).json()
    page.goto(sso_url(base))  # the provider session is still there: no password asked
    page.wait_for_url(lambda u: u.startswith(CLIENT_HOST + "/"))
    second = token_login(base, login_token_from(page.url)).json()
    assert first["user_id"] == second["user_id"]
    assert first["device_id"] != second["device_id"]
    assert whoami(base, first["access_token"]).status_code == 200

    # The user signs out at the provider, which notifies us server to server.
    page.goto(f"{op.issuer}/session/end", wait_until="domcontentloaded")
    page.click("button[name=logout][value=yes]")
    wait_until(lambda: whoami(base, second["access_token"]).status_code == 401)
    for session in (first, second):
        resp = whoami(base, session["access_token"])
        assert resp.status_code == 401
        assert resp.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert not Device.objects.filter(user_id=first["user_id"]).exists()
    record = AuditRecord.objects.filter(action=AuditAction.SSO_BACKCHANNEL_LOGOUT,
                                        target=first["user_id"]).get()
    assert record.details_dict["by"] == "sid"
    assert record.details_dict["devices_removed"] == 2
    page.context.close()


def logout_token(op: Any, **claims: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": op.issuer, "aud": "palisade", "iat": now, "exp": now + 120,
            "jti": uuid.uuid4().hex, "events": {LOGOUT_EVENT: {}}, **claims}


def post_logout(base: str, token: str) -> httpx.Response:
    return httpx.post(f"{base}/_palisade/oidc/backchannel_logout/test",
                      data={"logout_token": token})


def test_logout_tokens_are_checked_and_single_use(sso: Any, op: Any, browser: Any,
                                                  live_server: Any) -> None:
    base = url_of(live_server)
    page, url = sign_in(browser, base, "erin")
    session = token_login(base, login_token_from(url)).json()
    page.context.close()
    sub = ACCOUNTS["erin"]["sub"]
    bad = [
        op.control("mint", {"claims": logout_token(op, sub=sub), "alg": "none"})["token"],
        op.control("mint", {"claims": logout_token(op, sub=sub, aud="other")})["token"],
        op.control("mint", {"claims": logout_token(op, sub=sub, nonce="n")})["token"],
        op.control("mint", {"claims": logout_token(op, sub=sub, events={})})["token"],
        "not-a-jwt",
    ]
    for token in bad:
        resp = post_logout(base, token)
        assert resp.status_code == 400, token
        assert resp.json()["error"] == "invalid_request"
        assert resp.headers["Cache-Control"] == "no-store"
    assert whoami(base, session["access_token"]).status_code == 200

    good = op.control("mint", {"claims": logout_token(op, sub=sub), "typ": "logout+jwt"})
    assert post_logout(base, good["token"]).status_code == 200
    assert whoami(base, session["access_token"]).json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert post_logout(base, good["token"]).status_code == 400  # jti replayed


def test_provider_deprovisions_a_user_with_a_security_event(
        sso: Any, op: Any, browser: Any, live_server: Any) -> None:
    base = url_of(live_server)
    page, url = sign_in(browser, base, "frank")
    session = token_login(base, login_token_from(url)).json()
    page.context.close()
    event = {PURGED: {"subject": {"format": "iss_sub", "iss": op.issuer,
                                  "sub": ACCOUNTS["frank"]["sub"]}}}
    sent = op.control("set", {"url": f"{base}/_palisade/oidc/events/test", "aud": "palisade",
                              "events": event})
    assert sent["status"] == 202, sent
    assert whoami(base, session["access_token"]).json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert Account.objects.get(user_id=session["user_id"]).deactivated
    assert AuditRecord.objects.filter(action=AuditAction.USER_DEPROVISIONED,
                                      target=session["user_id"]).exists()
    # And the provider's next sign-in for that identity gets no session here.
    page, _ = sign_in_refused(browser, base, "frank")
    refused(page, "deactivated")
    page.context.close()


def sign_in_refused(browser: Any, base: str, login: str) -> tuple[Any, None]:
    from tests.idp.conftest import new_page, op_sign_in

    page = new_page(browser)
    page.goto(sso_url(base))
    op_sign_in(page, login)
    return page, None


def test_security_event_with_a_forged_signature_changes_nothing(
        sso: Any, op: Any, live_server: Any) -> None:
    now = int(time.time())
    forged = op.control("mint", {"alg": "none", "claims": {
        "iss": op.issuer, "aud": "palisade", "iat": now, "jti": uuid.uuid4().hex,
        "events": {PURGED: {}}, "sub": ACCOUNTS["alice"]["sub"]}})["token"]
    head = audit_head()
    resp = httpx.post(f"{url_of(live_server)}/_palisade/oidc/events/test", content=forged,
                      headers={"Content-Type": "application/secevent+jwt"})
    assert resp.status_code == 400
    assert resp.json()["err"] == "invalid_request"
    assert not AuditRecord.objects.filter(seq__gt=head,
                                          action=AuditAction.USER_DEPROVISIONED).exists()
