"""device_lists in /sync and GET /keys/changes: key uploads, new and removed devices, joining
and leaving shared rooms — and a change wakes a waiting /sync."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.accounts.conftest import PASSWORD, amake_user
from tests.e2ee.clientkeys import login_device, shared_room, sync, upload

pytestmark = pytest.mark.django_db(transaction=True)


def lists(resp: dict) -> tuple[list[str], list[str]]:
    return resp["device_lists"]["changed"], resp["device_lists"]["left"]


async def test_key_upload_new_device_and_removal_reach_room_members_only(api):
    alice = await login_device(api, await amake_user())
    bob = await login_device(api, await amake_user())
    carol = await login_device(api, await amake_user())  # shares no room with bob
    await shared_room(api, alice, bob)
    a0, b0, c0 = await sync(api, alice), await sync(api, bob), await sync(api, carol)
    assert "device_lists" not in a0 or a0["device_lists"] == {"changed": [], "left": []}

    await upload(api, bob, {"device_keys": bob.device_keys()})
    a1 = await sync(api, alice, a0["next_batch"])
    assert lists(a1) == ([bob.user_id], [])
    assert lists(await sync(api, carol, c0["next_batch"])) == ([], [])
    # The syncing user's own change is reported to them too (their other devices track it).
    assert lists(await sync(api, bob, b0["next_batch"])) == ([bob.user_id], [])
    # Reported once: the next incremental sync is quiet.
    a2 = await sync(api, alice, a1["next_batch"])
    assert lists(a2) == ([], [])

    bob2 = await login_device(api, bob.user_id)
    a3 = await sync(api, alice, a2["next_batch"])
    assert lists(a3) == ([bob.user_id], [])

    first = await api.call("POST", "/delete_devices", {"devices": [bob2.device_id]},
                           token=bob.token)
    r = await api.call("POST", "/delete_devices", {"devices": [bob2.device_id], "auth": {
        "type": "m.login.password", "session": first.json()["session"], "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": bob.user_id}}}, token=bob.token)
    assert r.status_code == 200
    a4 = await sync(api, alice, a3["next_batch"])
    assert lists(a4) == ([bob.user_id], [])

    # /keys/changes covers the same window in one call.
    r = await api.call("GET", f"/keys/changes?from={a0['next_batch']}&to={a4['next_batch']}",
                       token=alice.token)
    assert r.status_code == 200 and r.json() == {"changed": [bob.user_id], "left": []}
    r = await api.call("GET", f"/keys/changes?from={a4['next_batch']}&to={a4['next_batch']}",
                       token=alice.token)
    assert r.json() == {"changed": [], "left": []}
    r = await api.call("GET", f"/keys/changes?from={c0['next_batch']}", token=carol.token)
    assert r.json() == {"changed": [], "left": []}


async def test_joining_and_leaving_a_shared_room(api):
    alice = await login_device(api, await amake_user())
    bob = await login_device(api, await amake_user())
    carol = await login_device(api, await amake_user())
    room = await shared_room(api, alice, bob)
    a0, c0 = await sync(api, alice), await sync(api, carol)
    r = await api.call("POST", f"/rooms/{room}/invite", {"user_id": carol.user_id},
                       token=alice.token)
    assert r.status_code == 200
    assert (await api.call("POST", f"/rooms/{room}/join", {}, token=carol.token)).status_code \
        == 200
    a1 = await sync(api, alice, a0["next_batch"])
    assert lists(a1) == ([carol.user_id], [])
    c1 = await sync(api, carol, c0["next_batch"])
    assert lists(c1) == (sorted([alice.user_id, bob.user_id]), [])

    assert (await api.call("POST", f"/rooms/{room}/leave", {}, token=carol.token)).status_code \
        == 200
    a2 = await sync(api, alice, a1["next_batch"])
    assert lists(a2) == ([], [carol.user_id])
    c2 = await sync(api, carol, c1["next_batch"])
    assert lists(c2) == ([], sorted([alice.user_id, bob.user_id]))


async def test_a_change_wakes_a_waiting_sync(api):
    alice = await login_device(api, await amake_user())
    bob = await login_device(api, await amake_user())
    await shared_room(api, alice, bob)
    a0 = await sync(api, alice)
    a0 = await sync(api, alice, a0["next_batch"])
    waiting = asyncio.create_task(sync(api, alice, a0["next_batch"], timeout=20000))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    await upload(api, bob, {"device_keys": bob.device_keys()})
    a1 = await asyncio.wait_for(waiting, 25)
    assert lists(a1) == ([bob.user_id], [])
    assert time.monotonic() - started < 10, "the long-poll was not woken"


async def test_keys_changes_needs_a_valid_from(api):
    alice = await login_device(api, await amake_user())
    r = await api.call("GET", "/keys/changes", token=alice.token)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_MISSING_PARAM")
    r = await api.call("GET", "/keys/changes?from=garbage&to=s1", token=alice.token)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
