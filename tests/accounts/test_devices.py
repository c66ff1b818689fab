"""Device management, and deleting devices through user-interactive auth (m.login.password)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from audit.actions import AuditAction
from homeserver.models import AccessToken, Account, Device
from tests.accounts.conftest import PASSWORD, aaudit_head, aaudit_since, amake_user

pytestmark = pytest.mark.django_db(transaction=True)


def password_auth(user_id: str, session: str, password: str = PASSWORD) -> dict:
    return {"type": "m.login.password", "session": session, "password": password,
            "identifier": {"type": "m.id.user", "user": user_id}}


async def test_list_get_and_rename(api):
    user_id = await amake_user()
    a = await api.login(user_id, device_id="AAA", initial_device_display_name="Laptop")
    await api.login(user_id, device_id="BBB")
    resp = await api.call("GET", "/devices", token=a["access_token"])
    devices = resp.json()["devices"]
    assert [d["device_id"] for d in devices] == ["AAA", "BBB"]
    assert devices[0]["display_name"] == "Laptop"
    assert devices[0]["last_seen_ts"] > 0 and devices[0]["last_seen_ip"] == "127.0.0.1"
    resp = await api.call("PUT", "/devices/BBB", {"display_name": "Phone"},
                          token=a["access_token"])
    assert resp.status_code == 200
    resp = await api.call("GET", "/devices/BBB", token=a["access_token"])
    assert resp.json()["display_name"] == "Phone"


async def test_unknown_device_is_404(api):
    user_id = await amake_user()
    token = (await api.login(user_id))["access_token"]
    resp = await api.call("GET", "/devices/NOPE", token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (404, "M_NOT_FOUND")
    resp = await api.call("PUT", "/devices/NOPE", {"display_name": "x"}, token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (404, "M_NOT_FOUND")


async def test_other_users_devices_are_invisible(api):
    alice = await amake_user()
    bob = await amake_user()
    await api.login(bob, device_id="BOBDEV")
    token = (await api.login(alice))["access_token"]
    resp = await api.call("GET", "/devices/BOBDEV", token=token)
    assert resp.status_code == 404


async def test_delete_device_with_password(api):
    user_id = await amake_user()
    a = await api.login(user_id, device_id="AAA")
    b = await api.login(user_id, device_id="BBB")
    first = await api.call("DELETE", "/devices/BBB", token=a["access_token"])
    assert first.status_code == 401
    assert first.json()["flows"] == [{"stages": ["m.login.password"]}]
    session = first.json()["session"]
    # Wrong password: the stage fails, with errcode, and nothing is deleted.
    head = await aaudit_head()
    resp = await api.call("DELETE", "/devices/BBB",
                          {"auth": password_auth(user_id, session, "wrong password")},
                          token=a["access_token"])
    assert resp.status_code == 401
    assert resp.json()["errcode"] == "M_FORBIDDEN" and resp.json()["session"] == session
    assert [r.action for r in await aaudit_since(head)] == [AuditAction.LOGIN_FAILED]
    assert await sync_to_async(Device.objects.filter(user_id=user_id).count)() == 2
    head = await aaudit_head()
    resp = await api.call("DELETE", "/devices/BBB", {"auth": password_auth(user_id, session)},
                          token=a["access_token"])
    assert resp.status_code == 200, resp.json()
    assert (await api.call("GET", "/account/whoami",
                           token=b["access_token"])).status_code == 401
    records = await aaudit_since(head)
    assert [r.action for r in records] == [AuditAction.DEVICE_REMOVED]
    assert records[0].details_dict == {"device_id": "BBB", "reason": "deleted"}
    # The session was single-use.
    resp = await api.call("DELETE", "/devices/AAA", {"auth": password_auth(user_id, session)},
                          token=a["access_token"])
    assert resp.status_code in (400, 403)


async def test_uia_session_is_bound_to_the_request(api):
    user_id = await amake_user()
    a = await api.login(user_id, device_id="AAA")
    await api.login(user_id, device_id="BBB")
    first = await api.call("DELETE", "/devices/BBB", token=a["access_token"])
    session = first.json()["session"]
    resp = await api.call("DELETE", "/devices/AAA", {"auth": password_auth(user_id, session)},
                          token=a["access_token"])
    assert (resp.status_code, resp.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert await sync_to_async(Device.objects.filter(user_id=user_id).count)() == 2


async def test_password_stage_must_name_the_requester(api):
    alice = await amake_user()
    bob = await amake_user()
    a = await api.login(alice)
    first = await api.call("DELETE", f"/devices/{a['device_id']}", token=a["access_token"])
    resp = await api.call("DELETE", f"/devices/{a['device_id']}",
                          {"auth": password_auth(bob, first.json()["session"])},
                          token=a["access_token"])
    assert resp.status_code == 401 and resp.json()["errcode"] == "M_FORBIDDEN"


async def test_delete_devices_bulk(api):
    user_id = await amake_user()
    a = await api.login(user_id, device_id="AAA")
    for d in ("B1", "B2", "B3"):
        await api.login(user_id, device_id=d)
    body = {"devices": ["B1", "B2", "UNKNOWN"]}
    first = await api.call("POST", "/delete_devices", body, token=a["access_token"])
    assert first.status_code == 401
    resp = await api.call("POST", "/delete_devices",
                          {**body, "auth": password_auth(user_id, first.json()["session"])},
                          token=a["access_token"])
    assert resp.status_code == 200
    left = await sync_to_async(
        lambda: sorted(Device.objects.filter(user_id=user_id).values_list("device_id",
                                                                          flat=True)))()
    assert left == ["AAA", "B3"]
    assert await sync_to_async(
        AccessToken.objects.filter(user_id=user_id).count)() == 2


async def test_delete_devices_bad_body(api):
    user_id = await amake_user()
    token = (await api.login(user_id))["access_token"]
    resp = await api.call("POST", "/delete_devices", {"devices": "AAA"}, token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_BAD_JSON")


async def test_account_without_password_cannot_confirm(api):
    user_id = await amake_user()
    token = (await api.login(user_id))["access_token"]
    await sync_to_async(
        lambda: Account.objects.filter(user_id=user_id).update(password_hash="")
    )()
    resp = await api.call("DELETE", "/devices/X", token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (403, "M_FORBIDDEN")


async def test_single_request_with_auth_and_no_session(api):
    """Clients may send the password stage straight away, without a session (Element's
    password change does)."""
    user_id = await amake_user()
    a = await api.login(user_id, device_id="AAA")
    await api.login(user_id, device_id="BBB")
    auth = password_auth(user_id, "x")
    del auth["session"]
    resp = await api.call("DELETE", "/devices/BBB", {"auth": auth}, token=a["access_token"])
    assert resp.status_code == 200, resp.json()
