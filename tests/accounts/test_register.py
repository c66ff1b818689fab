"""POST /register with user-interactive auth, availability and registration tokens."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from audit.actions import AuditAction
from homeserver.models import AccessToken, Account, Device, Profile, UIASession
from homeserver.protocol.errors import MatrixError
from homeserver.services.accounts.register import insert_account
from homeserver.storage import registration as reg_store
from tests.accounts.conftest import (
    PASSWORD,
    aaudit_head,
    aaudit_since,
    amake_user,
    configure,
    server_name,
    unique_localpart,
)

pytestmark = pytest.mark.django_db(transaction=True)

account_count = sync_to_async(lambda: Account.objects.count())
row_counts = sync_to_async(lambda: (Account.objects.count(), Device.objects.count(),
                                    AccessToken.objects.count(), Profile.objects.count()))


async def register(api, body, **kw):
    """Run the whole dummy flow: first request, then the same body with auth."""
    first = await api.call("POST", "/register", body, **kw)
    if first.status_code != 401:
        return first
    auth = {"type": "m.login.dummy", "session": first.json()["session"]}
    return await api.call("POST", "/register", {**body, "auth": auth}, **kw)


async def test_registration_disabled(api, settings):
    configure(settings, registration={"enabled": False})
    resp = await api.call("POST", "/register", {"username": "x1", "password": PASSWORD})
    assert (resp.status_code, resp.json()["errcode"]) == (403, "M_FORBIDDEN")
    resp = await api.call("GET", "/register/available?username=x1")
    assert resp.status_code == 403


async def test_first_request_gets_flows_without_errcode(api):
    resp = await api.call("POST", "/register", {"username": unique_localpart(),
                                                 "password": PASSWORD})
    assert resp.status_code == 401
    body = resp.json()
    assert body["flows"] == [{"stages": ["m.login.dummy"]}]
    assert body["params"] == {}
    assert isinstance(body["session"], str) and body["session"]
    assert "errcode" not in body
    assert await account_count() == 0


async def test_dummy_flow_registers_and_logs_in(api):
    localpart = unique_localpart()
    head = await aaudit_head()
    resp = await register(api, {"username": localpart, "password": PASSWORD,
                                "initial_device_display_name": "Element", "device_id": "DEV1"})
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert body["user_id"] == f"@{localpart}:{server_name()}"
    assert body["device_id"] == "DEV1"
    who = await api.call("GET", "/account/whoami", token=body["access_token"])
    assert who.json()["user_id"] == body["user_id"]
    actions = [r.action for r in await aaudit_since(head)]
    assert actions == [AuditAction.USER_CREATED, AuditAction.DEVICE_ADDED]
    # The session was spent; the password works for login.
    assert await sync_to_async(UIASession.objects.count)() == 0
    assert (await api.login(localpart))["user_id"] == body["user_id"]
    # Default display name is the localpart.
    prof = await api.call("GET", f"/profile/{body['user_id']}", token=body["access_token"])
    assert prof.json() == {"displayname": localpart}


async def test_inhibit_login_and_refresh(api):
    resp = await register(api, {"username": unique_localpart(), "password": PASSWORD,
                                "inhibit_login": True})
    assert resp.status_code == 200
    assert set(resp.json()) == {"user_id", "home_server"}
    assert await sync_to_async(Device.objects.count)() == 0
    resp = await register(api, {"username": unique_localpart(), "password": PASSWORD,
                                "refresh_token": True})
    assert resp.json()["refresh_token"] and resp.json()["expires_in_ms"] > 0


async def test_user_in_use(api):
    user_id = await amake_user()
    before = await row_counts()
    resp = await api.call("POST", "/register", {"username": user_id[1:].split(":")[0],
                                                 "password": PASSWORD})
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_USER_IN_USE")
    resp = await api.call("GET", f"/register/available?username={user_id[1:].split(':')[0]}")
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_USER_IN_USE")
    assert await row_counts() == before


@pytest.mark.parametrize("username", ["Alice", "has space", "", "12345", "x" * 300, "a:b",
                                      "@who:elsewhere.example"])
async def test_invalid_username(api, username):
    resp = await register(api, {"username": username, "password": PASSWORD})
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_INVALID_USERNAME")
    assert await row_counts() == (0, 0, 0, 0)


async def test_weak_password_leaves_no_account(api):
    resp = await register(api, {"username": unique_localpart(), "password": "short"})
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_WEAK_PASSWORD")
    assert await row_counts() == (0, 0, 0, 0)


async def test_bad_device_id_leaves_no_account(api):
    resp = await register(api, {"username": unique_localpart(), "password": PASSWORD,
                                "device_id": 42})
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert await row_counts() == (0, 0, 0, 0)


async def test_session_bound_to_register(api):
    user_id = await amake_user()
    token = (await api.login(user_id))["access_token"]
    first = await api.call("POST", "/register", {"username": unique_localpart(),
                                                  "password": PASSWORD})
    session = first.json()["session"]
    # A registration session cannot authorise a password change.
    resp = await api.call("POST", "/account/password", {
        "new_password": "another long password",
        "auth": {"type": "m.login.dummy", "session": session}}, token=token)
    assert resp.status_code in (400, 403)


async def test_guest_registration_forbidden(api):
    resp = await api.call("POST", "/register?kind=guest", {})
    assert (resp.status_code, resp.json()["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")


async def test_available(api):
    resp = await api.call("GET", f"/register/available?username={unique_localpart()}")
    assert resp.json() == {"available": True}
    resp = await api.call("GET", "/register/available?username=BAD")
    assert resp.json()["errcode"] == "M_INVALID_USERNAME"


async def test_registration_token_flow(api, settings):
    configure(settings, registration={"require_token": True})
    await sync_to_async(reg_store.create_registration_token)("ward-7", uses_allowed=1)
    body = {"username": unique_localpart(), "password": PASSWORD}
    first = await api.call("POST", "/register", body)
    assert first.json()["flows"] == [{"stages": ["m.login.registration_token"]}]
    session = first.json()["session"]
    # Dummy is not offered.
    resp = await api.call("POST", "/register", {**body, "auth": {"type": "m.login.dummy",
                                                                  "session": session}})
    assert resp.status_code == 400
    # A wrong token is a failed stage: 401 with errcode, the session continues.
    resp = await api.call("POST", "/register", {**body, "auth": {
        "type": "m.login.registration_token", "token": "wrong", "session": session}})
    assert resp.status_code == 401
    assert resp.json()["errcode"] == "M_FORBIDDEN" and resp.json()["session"] == session
    assert await account_count() == 0
    valid = await api.call("GET", "/register/m.login.registration_token/validity?token=ward-7")
    assert valid.json() == {"valid": True}
    resp = await api.call("POST", "/register", {**body, "auth": {
        "type": "m.login.registration_token", "token": "ward-7", "session": session}})
    assert resp.status_code == 200, resp.json()
    assert await sync_to_async(reg_store.registration_token_counts)("ward-7") == (0, 1)
    valid = await api.call("GET", "/register/m.login.registration_token/validity?token=ward-7")
    assert valid.json() == {"valid": False}
    # Used up: the next registration cannot use it.
    body2 = {"username": unique_localpart(), "password": PASSWORD}
    first = await api.call("POST", "/register", body2)
    resp = await api.call("POST", "/register", {**body2, "auth": {
        "type": "m.login.registration_token", "token": "ward-7",
        "session": first.json()["session"]}})
    assert resp.status_code == 401 and resp.json()["errcode"] == "M_FORBIDDEN"


async def test_token_validity_requires_token_param(api):
    resp = await api.call("GET", "/register/m.login.registration_token/validity")
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_MISSING_PARAM")
    resp = await api.call("GET", "/register/m.login.registration_token/validity?token=nope")
    assert resp.json() == {"valid": False}


async def test_unknown_session(api):
    resp = await api.call("POST", "/register", {"username": unique_localpart(),
                                                 "password": PASSWORD,
                                                 "auth": {"type": "m.login.dummy",
                                                          "session": "made-up"}})
    assert resp.status_code == 400
    assert await account_count() == 0


def test_lost_race_for_a_user_id_is_user_in_use():
    """Two registrations that both passed the availability check: the unique index decides and
    the loser gets M_USER_IN_USE with nothing of its own left behind."""
    user_id = f"@{unique_localpart()}:{server_name()}"
    with transaction.atomic():
        insert_account(user_id, password_hash="", method="tests")
    with pytest.raises(MatrixError) as exc, transaction.atomic():
        insert_account(user_id, password_hash="", method="tests")
    assert exc.value.errcode == "M_USER_IN_USE"
    assert Account.objects.filter(user_id=user_id).count() == 1
