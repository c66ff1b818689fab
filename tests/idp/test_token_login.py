"""TI-Messenger style token login (POST /login type org.matrix.login.jwt) with JWTs the real
provider signs (its /_test/mint control signs with the provider's current key, as a sectoral
IdP signs the tokens it hands to messenger clients), and password login switched off."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from homeserver.models import Account, Device
from idp.models import ExternalIdentity
from tests.idp.conftest import ACCOUNTS, ALLOWED_OID, V3, provider_config, url_of

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
AUDIENCE = "tim-messenger"


@pytest.fixture
def jwt_sso(sso: Any, op: Any) -> Any:
    sso(provider_config(op, token_login=True, token_login_audience=AUDIENCE,
                        max_token_age_seconds=86400))
    return op


def claims(op: Any, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": op.issuer, "aud": AUDIENCE, "sub": ACCOUNTS["alice"]["sub"], "iat": now,
            "exp": now + 300, "jti": uuid.uuid4().hex, "preferred_username": "alice",
            "name": "Alice Arzt", "professionOID": ALLOWED_OID, **extra}


def mint(op: Any, body: dict[str, Any]) -> str:
    return op.control("mint", body)["token"]


def jwt_login(base: str, token: str) -> httpx.Response:
    return httpx.post(f"{base}{V3}/login", json={"type": "org.matrix.login.jwt",
                                                 "token": token}, timeout=30)


def state() -> tuple[int, int, int]:
    return Account.objects.count(), ExternalIdentity.objects.count(), Device.objects.count()


def test_jwt_login_provisions_once_and_each_token_works_once(jwt_sso: Any,
                                                              live_server: Any) -> None:
    base = url_of(live_server)
    flows = [f["type"] for f in httpx.get(f"{base}{V3}/login").json()["flows"]]
    assert "org.matrix.login.jwt" in flows
    token = mint(jwt_sso, {"claims": claims(jwt_sso)})
    first = jwt_login(base, token)
    assert first.status_code == 200, first.text
    user_id = first.json()["user_id"]
    assert user_id.startswith("@alice:")
    replay = jwt_login(base, token)
    assert replay.status_code == 403 and replay.json()["errcode"] == "M_FORBIDDEN"
    second = jwt_login(base, mint(jwt_sso, {"claims": claims(jwt_sso)}))
    assert second.json()["user_id"] == user_id
    assert ExternalIdentity.objects.filter(user_id=user_id).count() == 1


@pytest.mark.parametrize(("case", "body"), [
    ("alg none", {"alg": "none"}),
    ("wrong aud", {"claims": {"aud": "someone-else"}}),
    ("expired", {"claims": {"exp": int(time.time()) - 600, "iat": int(time.time()) - 900}}),
    ("no jti", {"claims": {"jti": None}}),
    ("wrong typ", {"typ": "at+jwt"}),
    ("no typ", {"typ": None}),
    ("older than 24 h", {"claims": {"iat": int(time.time()) - 25 * 3600,
                                    "exp": int(time.time()) + 300}}),
    ("wrong issuer", {"claims": {"iss": "https://evil.example"}}),
    ("attribute requirement", {"claims": {"professionOID": "1.2.276.0.76.4.999"}}),
])
def test_bad_tokens_are_refused_and_create_nothing(case: str, body: dict[str, Any],
                                                   jwt_sso: Any, live_server: Any) -> None:
    base = url_of(live_server)
    c = claims(jwt_sso, **body.get("claims", {}))
    c = {k: v for k, v in c.items() if v is not None}
    request = {"claims": c, **{k: v for k, v in body.items() if k != "claims"}}
    before = state()
    resp = jwt_login(base, mint(jwt_sso, request))
    assert resp.status_code == 403, (case, resp.text)
    assert resp.json()["errcode"] == "M_FORBIDDEN"
    assert state() == before


def test_garbage_token_is_refused(jwt_sso: Any, live_server: Any) -> None:
    resp = jwt_login(url_of(live_server), "a.b.c")
    assert resp.status_code == 403


def test_password_login_switched_off(sso: Any, op: Any, live_server: Any) -> None:
    from tests.accounts.conftest import make_user

    base = url_of(live_server)
    user_id = make_user("pwuser")
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
            "password": "correct horse battery staple"}
    assert httpx.post(f"{base}{V3}/login", json=body).status_code == 200
    sso(provider_config(op), password_login=False)
    flows = [f["type"] for f in httpx.get(f"{base}{V3}/login").json()["flows"]]
    assert "m.login.password" not in flows and "m.login.sso" in flows
    resp = httpx.post(f"{base}{V3}/login", json=body)
    assert resp.status_code == 400 and resp.json()["errcode"] == "M_UNKNOWN"


def test_tim_profiles_turn_password_login_off_by_default(sso: Any, settings: Any,
                                                         live_server: Any) -> None:
    from tests.idp.conftest import configure_validated

    configure_validated(settings, compliance_profile="ti-m-pro")
    flows = [f["type"] for f in httpx.get(f"{url_of(live_server)}{V3}/login").json()["flows"]]
    assert "m.login.password" not in flows
    configure_validated(settings, sso={**settings.PALISADE.sso.model_dump(),
                                       "password_login": True})
    flows = [f["type"] for f in httpx.get(f"{url_of(live_server)}{V3}/login").json()["flows"]]
    assert "m.login.password" in flows
