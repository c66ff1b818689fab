"""POST/GET /login, /refresh, /logout, /logout/all."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from audit.actions import AuditAction
from homeserver.models import AccessToken, Device, RefreshToken
from tests.accounts.conftest import (
    PASSWORD,
    aaudit_head,
    aaudit_since,
    amake_user,
    server_name,
)

pytestmark = pytest.mark.django_db(transaction=True)

count_devices = sync_to_async(lambda user_id: Device.objects.filter(user_id=user_id).count())
count_tokens = sync_to_async(lambda user_id: AccessToken.objects.filter(user_id=user_id).count())


async def test_get_login_lists_password_flow(api):
    resp = await api.call("GET", "/login")
    assert resp.status_code == 200
    assert {"type": "m.login.password"} in resp.json()["flows"]


async def test_login_with_localpart_and_whoami(api):
    user_id = await amake_user()
    localpart = user_id[1:].split(":")[0]
    body = await api.login(localpart, initial_device_display_name="Ward laptop")
    assert body["user_id"] == user_id
    assert body["home_server"] == server_name()
    assert "refresh_token" not in body and "expires_in_ms" not in body
    resp = await api.call("GET", "/account/whoami", token=body["access_token"])
    assert resp.json() == {"user_id": user_id, "device_id": body["device_id"], "is_guest": False}
    dev = await api.call("GET", f"/devices/{body['device_id']}", token=body["access_token"])
    assert dev.json()["display_name"] == "Ward laptop"


async def test_login_with_full_user_id_and_legacy_user_field(api):
    user_id = await amake_user()
    assert (await api.login(user_id))["user_id"] == user_id
    resp = await api.call("POST", "/login", {"type": "m.login.password", "user": user_id,
                                              "password": PASSWORD})
    assert resp.status_code == 200
    assert resp.json()["user_id"] == user_id


async def test_login_localpart_is_case_insensitive(api):
    user_id = await amake_user()
    assert (await api.login(user_id[1:].split(":")[0].upper()))["user_id"] == user_id


async def test_wrong_password_is_forbidden_audited_and_leaves_nothing(api):
    user_id = await amake_user()
    head = await aaudit_head()
    resp = await api.call("POST", "/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
        "password": "not the password", "device_id": "NEWDEVICE",
    })
    assert resp.status_code == 403
    assert resp.json()["errcode"] == "M_FORBIDDEN"
    assert await count_devices(user_id) == 0
    assert await count_tokens(user_id) == 0
    records = await aaudit_since(head)
    assert [r.action for r in records] == [AuditAction.LOGIN_FAILED]
    assert records[0].target == user_id
    assert records[0].details_dict == {"reason": "wrong_password", "method": "m.login.password"}
    assert "not the password" not in records[0].details


async def test_unknown_user_gets_the_same_answer(api):
    head = await aaudit_head()
    resp = await api.call("POST", "/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "nobody-here"},
        "password": PASSWORD,
    })
    assert resp.status_code == 403
    assert resp.json()["errcode"] == "M_FORBIDDEN"
    records = await aaudit_since(head)
    assert [r.details_dict["reason"] for r in records] == ["unknown_user"]


@pytest.mark.parametrize("identifier", [
    {"type": "m.id.thirdparty", "medium": "email", "address": "a@example.org"},
    {"type": "m.id.phone", "country": "DE", "phone": "0301234567"},
])
async def test_third_party_identifiers_are_refused_clearly(api, identifier):
    resp = await api.call("POST", "/login", {"type": "m.login.password",
                                              "identifier": identifier, "password": "x"})
    assert resp.status_code == 400
    assert resp.json()["errcode"] == "M_UNKNOWN"
    assert "third-party" in resp.json()["error"]


async def test_unknown_login_type(api):
    resp = await api.call("POST", "/login", {"type": "m.login.carrier_pigeon"})
    assert resp.status_code == 400
    assert resp.json()["errcode"] == "M_UNKNOWN"


async def test_not_json_and_bad_json(api):
    resp = await api.call("POST", "/login", raw=b"{not json")
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_NOT_JSON")
    resp = await api.call("POST", "/login", raw=b"[1, 2]")
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_BAD_JSON")
    user_id = await amake_user()
    resp = await api.call("POST", "/login", {"type": "m.login.password", "user": user_id,
                                              "password": 12345})
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_BAD_JSON")
    assert await count_devices(user_id) == 0


async def test_unsupported_method_is_405_unrecognized(api):
    resp = await api.call("PUT", "/login", {})
    assert resp.status_code == 405
    assert resp.json()["errcode"] == "M_UNRECOGNIZED"
    resp = await api.call("GET", "/logout")
    assert (resp.status_code, resp.json()["errcode"]) == (405, "M_UNRECOGNIZED")


async def test_login_audits_success_and_new_device(api):
    user_id = await amake_user()
    head = await aaudit_head()
    body = await api.login(user_id)
    records = await aaudit_since(head)
    assert [r.action for r in records] == [AuditAction.DEVICE_ADDED, AuditAction.LOGIN_SUCCEEDED]
    assert records[1].details_dict["device_id"] == body["device_id"]
    assert body["access_token"] not in "".join(r.details for r in records)


async def test_device_id_reuse_invalidates_previous_tokens(api):
    user_id = await amake_user()
    first = await api.login(user_id, device_id="PHONE")
    second = await api.login(user_id, device_id="PHONE")
    assert first["device_id"] == second["device_id"] == "PHONE"
    assert await count_devices(user_id) == 1
    old = await api.call("GET", "/account/whoami", token=first["access_token"])
    assert (old.status_code, old.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    new = await api.call("GET", "/account/whoami", token=second["access_token"])
    assert new.json()["device_id"] == "PHONE"


async def test_refresh_tokens_rotate(api):
    user_id = await amake_user()
    body = await api.login(user_id, refresh_token=True)
    assert body["expires_in_ms"] > 0 and body["refresh_token"]
    r1 = body["refresh_token"]
    resp = await api.call("POST", "/refresh", {"refresh_token": r1})
    assert resp.status_code == 200
    second = resp.json()
    assert set(second) == {"access_token", "refresh_token", "expires_in_ms"}
    # Until the new tokens are used the old refresh token still works (lost responses).
    resp = await api.call("POST", "/refresh", {"refresh_token": r1})
    assert resp.status_code == 200
    third = resp.json()
    # The discarded second pair is gone.
    assert (await api.call("GET", "/account/whoami",
                           token=second["access_token"])).status_code == 401
    # Using the new access token spends the old refresh token.
    assert (await api.call("GET", "/account/whoami",
                           token=third["access_token"])).status_code == 200
    resp = await api.call("POST", "/refresh", {"refresh_token": r1})
    assert (resp.status_code, resp.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    # The very first access token went with the first refresh token.
    assert (await api.call("GET", "/account/whoami",
                           token=body["access_token"])).status_code == 401
    assert await sync_to_async(RefreshToken.objects.filter(user_id=user_id).count)() == 1


async def test_refresh_with_unknown_token(api):
    resp = await api.call("POST", "/refresh", {"refresh_token": "palr_nope"})
    assert (resp.status_code, resp.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    resp = await api.call("POST", "/refresh", {})
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_MISSING_PARAM")


async def test_logout_deletes_the_device_and_audits(api):
    user_id = await amake_user()
    keep = await api.login(user_id)
    gone = await api.login(user_id)
    head = await aaudit_head()
    resp = await api.call("POST", "/logout", {}, token=gone["access_token"])
    assert resp.status_code == 200 and resp.json() == {}
    assert (await api.call("GET", "/account/whoami",
                           token=gone["access_token"])).status_code == 401
    assert (await api.call("GET", "/account/whoami",
                           token=keep["access_token"])).status_code == 200
    actions = [r.action for r in await aaudit_since(head)]
    assert actions == [AuditAction.DEVICE_REMOVED, AuditAction.LOGOUT]


async def test_logout_all(api):
    user_id = await amake_user()
    tokens = [(await api.login(user_id))["access_token"] for _ in range(3)]
    resp = await api.call("POST", "/logout/all", {}, token=tokens[0])
    assert resp.status_code == 200
    for t in tokens:
        assert (await api.call("GET", "/account/whoami", token=t)).status_code == 401
    assert await count_devices(user_id) == 0
