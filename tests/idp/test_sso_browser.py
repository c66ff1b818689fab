"""SSO login for Matrix clients (m.login.sso + m.login.token) against a real OpenID provider,
with the browser dance in Debian's chromium: provisioning, the same account on later logins
(also across a provider key rotation), single-use login tokens, the confirmation page, and
each refusal (forged/replayed state, another browser, untrustworthy ID tokens, attribute
requirements) shown as a clear page with nothing created."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from audit.actions import AuditAction
from audit.models import AuditRecord
from homeserver.models import Account, Device, Profile
from idp.models import ExternalIdentity
from idp.oidc import discovery
from tests.idp.conftest import (
    ACCOUNTS,
    CLIENT_HOST,
    V3,
    login_token_from,
    new_page,
    op_sign_in,
    provider_config,
    refused,
    sign_in,
    sso_url,
    token_login,
    url_of,
)

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def counts() -> tuple[int, int, int]:
    return Account.objects.count(), ExternalIdentity.objects.count(), Device.objects.count()


def test_login_flows_advertise_the_providers(sso: Any, live_server: Any) -> None:
    flows = httpx.get(f"{url_of(live_server)}{V3}/login").json()["flows"]
    sso_flow = next(f for f in flows if f["type"] == "m.login.sso")
    assert sso_flow["identity_providers"] == [{"id": "test", "name": "Test IdP"}]
    assert {"type": "m.login.token"} in flows
    assert {"type": "m.login.password"} in flows


def test_first_login_creates_the_user_and_the_token_works_once(
        sso: Any, browser: Any, live_server: Any) -> None:
    base = url_of(live_server)
    page, url = sign_in(browser, base, "alice")
    assert url.startswith(CLIENT_HOST + "/cb?session=abc&loginToken=")
    token = login_token_from(url)
    resp = token_login(base, token, initial_device_display_name="Phone")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    user_id = body["user_id"]
    assert user_id.startswith("@alice:")
    who = httpx.get(f"{base}{V3}/account/whoami",
                    headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert who["user_id"] == user_id
    identity = ExternalIdentity.objects.get(user_id=user_id)
    assert (identity.issuer, identity.subject) == (sso_issuer(), ACCOUNTS["alice"]["sub"])
    assert (identity.email, identity.organisation) == ("alice@klinik.example", "Klinik Nord")
    assert Profile.objects.get(user_id=user_id).displayname == "Alice Arzt"
    actions = set(AuditRecord.objects.filter(target=user_id).values_list("action", flat=True))
    assert {AuditAction.USER_CREATED, AuditAction.SSO_ACCOUNT_LINKED,
            AuditAction.LOGIN_SUCCEEDED, AuditAction.DEVICE_ADDED} <= actions

    again = token_login(base, token)
    assert again.status_code == 403
    assert again.json()["errcode"] == "M_FORBIDDEN"
    assert Device.objects.filter(user_id=user_id).count() == 1
    page.context.close()


def sso_issuer() -> str:
    from django.conf import settings

    return settings.PALISADE.oidc_providers[0].issuer


def test_second_login_is_the_same_user_across_key_rotation_and_updates_the_name(
        sso: Any, op: Any, browser: Any, live_server: Any, monkeypatch: Any) -> None:
    # The JWKS is refetched for an unknown key id at most every MIN_JWKS_REFRESH_S; this test
    # rotates faster than that (the live server runs in this process, so this reaches it).
    monkeypatch.setattr(discovery, "MIN_JWKS_REFRESH_S", 0)
    base = url_of(live_server)
    page, url = sign_in(browser, base, "erin")
    first = token_login(base, login_token_from(url)).json()["user_id"]
    page.context.close()

    op.control("rotate", drop="1")  # the provider signs with a new key, the old one is gone
    op.control("account", {"login": "erin", "claims": {"name": "Erin Ärztin"}})
    page, url = sign_in(browser, base, "erin")
    second = token_login(base, login_token_from(url)).json()["user_id"]
    assert second == first
    assert ExternalIdentity.objects.filter(user_id=first).count() == 1
    assert Account.objects.filter(localpart__startswith="erin").count() == 1
    assert Profile.objects.get(user_id=first).displayname == "Erin Ärztin"
    page.context.close()


def test_same_display_name_or_localpart_never_links_another_identity(
        sso: Any, op: Any, browser: Any, live_server: Any) -> None:
    """frank's provider account claims preferred_username "alice2"-style collisions: a new
    identity whose username is taken gets a new account, never the existing one."""
    base = url_of(live_server)
    page, url = sign_in(browser, base, "alice")
    alice = token_login(base, login_token_from(url)).json()["user_id"]
    page.context.close()
    op.control("account", {"login": "frank", "claims": {"preferred_username": "alice",
                                                        "name": "Alice Arzt"}})
    page, url = sign_in(browser, base, "frank")
    frank = token_login(base, login_token_from(url)).json()["user_id"]
    assert frank != alice
    assert frank.startswith("@alice-2:")
    page.context.close()


def test_untrusted_redirect_url_needs_confirmation(sso: Any, browser: Any,
                                                   live_server: Any) -> None:
    base = url_of(live_server)
    page = new_page(browser)
    page.goto(sso_url(base, redirect=CLIENT_HOST + "/other-app"))  # not under the whitelist
    op_sign_in(page, "alice")
    page.wait_for_selector("#sso-continue")
    assert page.locator("#sso-client").inner_text() == CLIENT_HOST.removeprefix("http://")
    assert page.locator("#sso-user").inner_text().startswith("@alice")
    page.click("#sso-continue")
    page.wait_for_url(lambda u: u.startswith(CLIENT_HOST + "/other-app?loginToken="))
    resp = token_login(base, login_token_from(page.url))
    assert resp.status_code == 200
    page.context.close()


def test_forged_state_is_refused(sso: Any, browser: Any, live_server: Any) -> None:
    before = counts()
    page = new_page(browser)
    resp = page.goto(f"{url_of(live_server)}/_palisade/oidc/callback?state=forged&code=abc")
    assert resp.status == 400
    refused(page, "unknown_state")
    assert counts() == before
    page.context.close()


def test_replayed_state_is_refused(sso: Any, browser: Any, live_server: Any) -> None:
    base = url_of(live_server)
    page = new_page(browser)
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url)
            if "/_palisade/oidc/callback" in r.url else None)
    page.goto(sso_url(base))
    op_sign_in(page, "alice")
    page.wait_for_url(lambda u: u.startswith(CLIENT_HOST + "/"))
    before = counts()
    resp = page.goto(callbacks[0])
    assert resp.status == 400
    refused(page, "replayed_state")
    assert counts() == before
    page.context.close()


def test_flow_finished_in_another_browser_is_refused(sso: Any, op: Any, browser: Any,
                                                     live_server: Any) -> None:
    base = url_of(live_server)
    started = new_page(browser)
    with started.expect_request(lambda r: r.url.startswith(op.issuer + "/auth")) as req:
        started.goto(sso_url(base))
    authorize_url = req.value.url
    before = counts()
    other = new_page(browser)  # another cookie jar: the binding cookie is not there
    other.goto(authorize_url)
    op_sign_in(other, "dave")
    refused(other, "other_browser")
    assert counts() == before
    assert not Account.objects.filter(localpart="dave").exists()
    started.context.close()
    other.context.close()


@pytest.mark.parametrize(("mode", "reason"), [
    ("tampered", "bad_signature"),
    ("alg_none", "alg_not_allowed"),
    ("wrong_aud", "wrong_audience"),
    ("expired", "expired"),
])
def test_untrustworthy_id_tokens_are_refused(mode: str, reason: str, sso: Any, op: Any,
                                             browser: Any, live_server: Any) -> None:
    before = counts()
    op.control("misbehave", mode=mode)
    page = new_page(browser)
    page.goto(sso_url(url_of(live_server)))
    op_sign_in(page, "dave")
    refused(page, reason)
    assert counts() == before
    assert AuditRecord.objects.filter(action=AuditAction.LOGIN_FAILED,
                                      details__contains=reason).exists()
    page.context.close()


def test_token_older_than_max_age_is_refused(sso: Any, op: Any, browser: Any,
                                             live_server: Any) -> None:
    """TI-M: an ID token whose authentication is older than 24 h is refused."""
    sso(provider_config(op, max_token_age_seconds=86400))
    before = counts()
    op.control("misbehave", mode="old")
    page = new_page(browser)
    page.goto(sso_url(url_of(live_server)))
    op_sign_in(page, "dave")
    refused(page, "too_old")
    assert counts() == before
    page.context.close()


def test_user_failing_the_attribute_requirement_gets_no_account(
        sso: Any, browser: Any, live_server: Any) -> None:
    before = counts()
    page = new_page(browser)
    page.goto(sso_url(url_of(live_server)))
    op_sign_in(page, "bob")
    refused(page, "attribute_requirement")
    assert "not permitted" in page.locator("#sso-error-message").inner_text()
    assert counts() == before
    record = AuditRecord.objects.filter(action=AuditAction.LOGIN_FAILED).order_by("-seq").first()
    assert record.details_dict["failed_claims"] == ["professionOID"]
    page.context.close()


def test_par_with_private_key_jwt_and_client_secret_post(sso: Any, op: Any, browser: Any,
                                                         live_server: Any) -> None:
    base = url_of(live_server)
    sso(provider_config(op, id="par", name="PAR IdP", client_id="palisade-par",
                        client_secret="", client_auth_method="private_key_jwt",
                        client_private_key_path=str(op.pkjwt_pem),
                        client_private_key_kid="palisade-client-key", use_par=True),
        provider_config(op, id="post", name="Post IdP", client_id="palisade-post",
                        client_auth_method="client_secret_post", claims_source="id_token",
                        attribute_requirements=[],
                        user_mapping={"localpart": "tim-{sub}", "display_name": "{name}"}))
    page = new_page(browser)
    page.goto(sso_url(base, idp=None))  # two providers: a page to choose
    page.click("a[data-idp=par]")
    op_sign_in(page, "alice")
    page.wait_for_url(lambda u: u.startswith(CLIENT_HOST + "/"))
    assert token_login(base, login_token_from(page.url)).json()["user_id"].startswith("@alice")
    page.context.close()

    page = new_page(browser)
    page.goto(sso_url(base, idp="post"))
    op_sign_in(page, "erin")
    page.wait_for_url(lambda u: u.startswith(CLIENT_HOST + "/"))
    resp = token_login(base, login_token_from(page.url))
    assert resp.json()["user_id"].startswith(f"@tim-{ACCOUNTS['erin']['sub']}:")
    page.context.close()
