"""POST /keys/query and /keys/claim: what other users get of a device's keys, one-time keys
handed out once in upload order, then the fallback key, and a removed device's keys gone."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from homeserver.models import DeviceKeys, OneTimeKey
from tests.accounts.conftest import PASSWORD, amake_user
from tests.e2ee.clientkeys import ClientDevice, login_device, sync, upload

pytestmark = pytest.mark.django_db(transaction=True)


async def test_query_returns_signed_keys_with_display_name(api):
    alice = await login_device(api, await amake_user())
    bob_id = await amake_user()
    r = await api.login(bob_id, initial_device_display_name="Bob's phone")
    bob = ClientDevice(bob_id, r["device_id"], r["access_token"])
    bob_idle = await login_device(api, bob_id)  # a device that never uploaded keys
    await upload(api, bob, {"device_keys": bob.device_keys()})
    resp = await api.call("POST", "/keys/query", {"device_keys": {bob_id: []}},
                          token=alice.token)
    assert resp.status_code == 200
    body = resp.json()
    devices = body["device_keys"][bob_id]
    assert set(devices) == {bob.device_id} and bob_idle.device_id not in devices
    d = devices[bob.device_id]
    assert d["keys"] == bob.device_keys()["keys"]
    assert d["signatures"] == bob.device_keys()["signatures"]
    assert d["unsigned"] == {"device_display_name": "Bob's phone"}
    assert body["failures"] == {}
    # Asking for named devices only; unknown users and devices are simply absent.
    resp = await api.call("POST", "/keys/query", {"device_keys": {
        bob_id: ["NOPE"], "@ghost:localhost:8008": []}}, token=alice.token)
    assert resp.json()["device_keys"] == {bob_id: {}, "@ghost:localhost:8008": {}}


async def test_query_remote_users_reports_their_server_as_failed(api):
    alice = await login_device(api, await amake_user())
    resp = await api.call("POST", "/keys/query",
                          {"device_keys": {"@carol:remote.example": []}}, token=alice.token)
    assert resp.status_code == 200
    assert "remote.example" in resp.json()["failures"]
    resp = await api.call("POST", "/keys/claim", {"one_time_keys": {
        "@carol:remote.example": {"DEV": "signed_curve25519"}}}, token=alice.token)
    assert resp.json()["one_time_keys"] == {}
    assert "remote.example" in resp.json()["failures"]


async def test_malformed_query_and_claim(api):
    alice = await login_device(api, await amake_user())
    cases = [
        ("/keys/query", {}, "M_BAD_JSON"),
        ("/keys/query", {"device_keys": []}, "M_BAD_JSON"),
        ("/keys/query", {"device_keys": {"@a:localhost:8008": "DEV"}}, "M_BAD_JSON"),
        ("/keys/query", {"device_keys": {"not-a-user": []}}, "M_INVALID_PARAM"),
        ("/keys/query", {"device_keys": {}, "timeout": "10"}, "M_BAD_JSON"),
        ("/keys/claim", {"one_time_keys": {"@a:localhost:8008": ["DEV"]}}, "M_BAD_JSON"),
        ("/keys/claim", {"one_time_keys": {"@a:localhost:8008": {"DEV": 5}}}, "M_BAD_JSON"),
        ("/keys/claim", {"one_time_keys": {"nobody": {}}}, "M_INVALID_PARAM"),
    ]
    for path, body, errcode in cases:
        resp = await api.call("POST", path, body, token=alice.token)
        assert (resp.status_code, resp.json()["errcode"]) == (400, errcode), (path, body)


async def test_claim_hands_out_keys_once_in_upload_order_then_the_fallback(api):
    alice = await login_device(api, await amake_user())
    bob = await login_device(api, await amake_user())
    first, second = bob.one_time_keys(2), bob.one_time_keys(1)
    fallback = bob.one_time_keys(1, fallback=True)
    await upload(api, bob, {"device_keys": bob.device_keys(), "one_time_keys": first})
    await upload(api, bob, {"one_time_keys": second, "fallback_keys": fallback})
    s0 = await sync(api, bob)
    assert s0["device_one_time_keys_count"] == {"signed_curve25519": 3}
    assert s0["device_unused_fallback_key_types"] == ["signed_curve25519"]
    req = {"one_time_keys": {bob.user_id: {bob.device_id: "signed_curve25519"}}}
    got = []
    for _ in range(5):
        resp = await api.call("POST", "/keys/claim", req, token=alice.token)
        assert resp.status_code == 200
        got.append(resp.json()["one_time_keys"][bob.user_id][bob.device_id])
    expected = [{k: v} for k, v in first.items()] + [second]
    assert got[:3] == expected
    assert got[3] == got[4] == fallback
    s1 = await sync(api, bob, s0["next_batch"])
    assert s1["device_one_time_keys_count"] == {"signed_curve25519": 0}
    assert s1["device_unused_fallback_key_types"] == []
    # Re-uploading the same (used) fallback key does not make it look fresh; a new one does.
    await upload(api, bob, {"fallback_keys": fallback})
    assert (await sync(api, bob))["device_unused_fallback_key_types"] == []
    await upload(api, bob, {"fallback_keys": bob.one_time_keys(1, fallback=True)})
    assert (await sync(api, bob))["device_unused_fallback_key_types"] == ["signed_curve25519"]
    # Nothing to claim for an unknown device or algorithm.
    resp = await api.call("POST", "/keys/claim", {"one_time_keys": {
        bob.user_id: {"NOPE": "signed_curve25519", bob.device_id: "curve25519"}}},
        token=alice.token)
    assert resp.json()["one_time_keys"] == {}


@sync_to_async
def key_rows(user_id: str, device_id: str) -> int:
    return (DeviceKeys.objects.filter(user_id=user_id, device_id=device_id).count()
            + OneTimeKey.objects.filter(user_id=user_id, device_id=device_id).count())


async def test_deleting_a_device_deletes_its_keys(api):
    user = await amake_user()
    a = await login_device(api, user)
    b = await login_device(api, user)
    await upload(api, b, {"device_keys": b.device_keys(), "one_time_keys": b.one_time_keys(3)})
    assert await key_rows(user, b.device_id) == 4
    first = await api.call("DELETE", f"/devices/{b.device_id}", {}, token=a.token)
    session = first.json()["session"]
    r = await api.call("DELETE", f"/devices/{b.device_id}", {"auth": {
        "type": "m.login.password", "session": session, "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": user}}}, token=a.token)
    assert r.status_code == 200
    assert await key_rows(user, b.device_id) == 0
    resp = await api.call("POST", "/keys/query", {"device_keys": {user: []}}, token=a.token)
    assert resp.json()["device_keys"][user] == {}
