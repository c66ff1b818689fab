"""The token-bucket limiter, and the 429 the login and registration endpoints give."""

from __future__ import annotations

import pytest

from homeserver.protocol.errors import MatrixError
from homeserver.services import ratelimit
from tests.accounts.conftest import Api, ClientAt, configure, random_ip, unique_localpart


@pytest.fixture
def limits_on(settings):
    configure(settings, rate_limits={
        "enabled": True,
        "login": {"per_second": 0.5, "burst": 3},
        "registration": {"per_second": 0.5, "burst": 2},
    })


def test_bucket_allows_burst_then_refills(limits_on, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    key = f"ip:{random_ip()}"
    for _ in range(3):
        ratelimit.check_rate_limit("login", key)
    with pytest.raises(MatrixError) as exc:
        ratelimit.check_rate_limit("login", key)
    assert exc.value.status == 429
    assert exc.value.errcode == "M_LIMIT_EXCEEDED"
    assert exc.value.extra["retry_after_ms"] == 2000
    # Other keys and actions have their own buckets.
    ratelimit.check_rate_limit("login", f"ip:{random_ip()}")
    ratelimit.check_rate_limit("registration", key)
    clock[0] += 2.0  # one token back
    ratelimit.check_rate_limit("login", key)
    with pytest.raises(MatrixError):
        ratelimit.check_rate_limit("login", key)


def test_disabled_never_limits(settings):
    configure(settings, rate_limits={"enabled": False})
    for _ in range(100):
        ratelimit.check_rate_limit("login", "ip:192.0.2.1")


def test_unknown_action_is_a_programming_error(limits_on):
    with pytest.raises(ValueError):
        ratelimit.check_rate_limit("no_such_action", "x")


@pytest.mark.django_db(transaction=True)
async def test_login_is_limited_per_address_and_per_account(limits_on):
    api = Api(ClientAt(random_ip()))
    body = {"type": "m.login.password", "user": unique_localpart(), "password": "wrong pass"}
    codes = [(await api.call("POST", "/login", body)).status_code for _ in range(3)]
    assert codes == [403, 403, 403]
    resp = await api.call("POST", "/login", body)
    assert resp.status_code == 429
    assert resp.json()["errcode"] == "M_LIMIT_EXCEEDED"
    assert resp.json()["retry_after_ms"] > 0
    # Guessing the same account's password from elsewhere is limited too...
    other = Api(ClientAt(random_ip()))
    assert (await other.call("POST", "/login", body)).status_code == 429
    # ...while other accounts from another address are not affected.
    body["user"] = unique_localpart()
    assert (await other.call("POST", "/login", body)).status_code == 403


@pytest.mark.django_db(transaction=True)
async def test_registration_is_limited(limits_on):
    api = Api(ClientAt(random_ip()))
    for _ in range(2):
        resp = await api.call("GET", f"/register/available?username={unique_localpart()}")
        assert resp.status_code == 200
    resp = await api.call("GET", f"/register/available?username={unique_localpart()}")
    assert (resp.status_code, resp.json()["errcode"]) == (429, "M_LIMIT_EXCEEDED")
