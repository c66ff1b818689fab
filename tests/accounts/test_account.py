"""Password change and deactivation."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from audit.actions import AuditAction
from homeserver.models import Account, AccountData, Profile
from tests.accounts.conftest import PASSWORD, aaudit_head, aaudit_since, amake_user
from tests.accounts.test_devices import password_auth

pytestmark = pytest.mark.django_db(transaction=True)
NEW_PASSWORD = "a brand new long password"


async def uia(api, method, path, body, token, user_id, password=PASSWORD):
    first = await api.call(method, path, body, token=token)
    assert first.status_code == 401, first.json()
    auth = password_auth(user_id, first.json()["session"], password)
    return await api.call(method, path, {**body, "auth": auth}, token=token)


async def test_change_password_logs_out_other_devices(api):
    user_id = await amake_user()
    me = await api.login(user_id)
    other = await api.login(user_id)
    head = await aaudit_head()
    resp = await uia(api, "POST", "/account/password", {"new_password": NEW_PASSWORD},
                     me["access_token"], user_id)
    assert resp.status_code == 200, resp.json()
    assert (await api.call("GET", "/account/whoami",
                           token=me["access_token"])).status_code == 200
    assert (await api.call("GET", "/account/whoami",
                           token=other["access_token"])).status_code == 401
    records = await aaudit_since(head)
    assert [r.action for r in records] == [AuditAction.DEVICE_REMOVED,
                                           AuditAction.PASSWORD_CHANGED]
    assert NEW_PASSWORD not in records[1].details and PASSWORD not in records[1].details
    assert (await api.login(user_id, NEW_PASSWORD))["user_id"] == user_id
    resp = await api.call("POST", "/login", {"type": "m.login.password", "user": user_id,
                                              "password": PASSWORD})
    assert resp.status_code == 403


async def test_change_password_keeping_devices(api):
    user_id = await amake_user()
    me = await api.login(user_id)
    other = await api.login(user_id)
    resp = await uia(api, "POST", "/account/password",
                     {"new_password": NEW_PASSWORD, "logout_devices": False},
                     me["access_token"], user_id)
    assert resp.status_code == 200
    assert (await api.call("GET", "/account/whoami",
                           token=other["access_token"])).status_code == 200


async def test_weak_new_password_is_refused_before_auth(api):
    user_id = await amake_user()
    me = await api.login(user_id)
    resp = await api.call("POST", "/account/password", {"new_password": "short"},
                          token=me["access_token"])
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_WEAK_PASSWORD")


async def test_wrong_current_password_changes_nothing(api):
    user_id = await amake_user()
    me = await api.login(user_id)
    resp = await uia(api, "POST", "/account/password", {"new_password": NEW_PASSWORD},
                     me["access_token"], user_id, password="wrong password")
    assert resp.status_code == 401 and resp.json()["errcode"] == "M_FORBIDDEN"
    assert (await api.login(user_id))["user_id"] == user_id


async def test_password_change_needs_a_token(api):
    resp = await api.call("POST", "/account/password", {"new_password": NEW_PASSWORD})
    assert (resp.status_code, resp.json()["errcode"]) == (401, "M_MISSING_TOKEN")


async def test_deactivate_with_erase(api):
    user_id = await amake_user()
    me = await api.login(user_id)
    other = await api.login(user_id)
    resp = await api.call("PUT", f"/user/{user_id}/account_data/org.example.notes",
                          {"n": 1}, token=me["access_token"])
    assert resp.status_code == 200
    head = await aaudit_head()
    resp = await uia(api, "POST", "/account/deactivate", {"erase": True},
                     me["access_token"], user_id)
    assert resp.status_code == 200, resp.json()
    assert resp.json() == {"id_server_unbind_result": "no-support"}
    for token in (me["access_token"], other["access_token"]):
        assert (await api.call("GET", "/account/whoami", token=token)).status_code == 401
    actions = [r.action for r in await aaudit_since(head)]
    assert actions == [AuditAction.DEVICE_REMOVED, AuditAction.DEVICE_REMOVED,
                       AuditAction.USER_DEACTIVATED, AuditAction.USER_ERASED]
    account = await sync_to_async(Account.objects.get)(user_id=user_id)
    assert account.deactivated and account.erased and account.password_hash == ""
    assert await sync_to_async(AccountData.objects.filter(user_id=user_id).count)() == 0
    profile = await sync_to_async(Profile.objects.get)(user_id=user_id)
    assert (profile.displayname, profile.avatar_url) == ("", "")
    resp = await api.call("POST", "/login", {"type": "m.login.password", "user": user_id,
                                              "password": PASSWORD})
    assert resp.status_code == 403
    # The user ID stays taken.
    resp = await api.call("GET", f"/register/available?username={user_id[1:].split(':')[0]}")
    assert resp.json()["errcode"] == "M_USER_IN_USE"


async def test_deactivate_without_erase(api):
    user_id = await amake_user()
    me = await api.login(user_id)
    head = await aaudit_head()
    resp = await uia(api, "POST", "/account/deactivate", {}, me["access_token"], user_id)
    assert resp.status_code == 200
    actions = [r.action for r in await aaudit_since(head)]
    assert actions == [AuditAction.DEVICE_REMOVED, AuditAction.USER_DEACTIVATED]
    account = await sync_to_async(Account.objects.get)(user_id=user_id)
    assert account.deactivated and not account.erased


async def test_deactivate_wrong_password_does_nothing(api):
    user_id = await amake_user()
    me = await api.login(user_id)
    resp = await uia(api, "POST", "/account/deactivate", {}, me["access_token"], user_id,
                     password="wrong password")
    assert resp.status_code == 401
    assert (await api.call("GET", "/account/whoami",
                           token=me["access_token"])).status_code == 200
