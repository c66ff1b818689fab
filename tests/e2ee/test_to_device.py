"""PUT /sendToDevice and the /sync to_device section: exactly the addressed devices, once per
transaction id, in order, at most 100 per response, kept until acknowledged by the next since."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from homeserver.models import ToDeviceMessage
from tests.accounts.conftest import PASSWORD, amake_user
from tests.e2ee.clientkeys import login_device, sync

pytestmark = pytest.mark.django_db(transaction=True)

count_messages = sync_to_async(lambda: ToDeviceMessage.objects.count())


async def send(api, dev, messages: dict, txn: str, event_type: str = "org.example.ping",
               status: int = 200) -> dict:
    r = await api.call("PUT", f"/sendToDevice/{event_type}/{txn}", {"messages": messages},
                       token=dev.token)
    assert r.status_code == status, r.json()
    return r.json()


def events(resp: dict) -> list[dict]:
    return resp["to_device"]["events"]


async def test_delivered_to_exactly_the_addressed_device_once(api):
    alice = await login_device(api, await amake_user())
    bob_id = await amake_user()
    bob1, bob2 = await login_device(api, bob_id), await login_device(api, bob_id)
    s1, s2 = await sync(api, bob1), await sync(api, bob2)
    assert await send(api, alice, {bob_id: {bob1.device_id: {"n": 1}}}, "t1") == {}
    # Same transaction again: not queued twice.
    await send(api, alice, {bob_id: {bob1.device_id: {"n": 1}}}, "t1")
    r1 = await sync(api, bob1, s1["next_batch"])
    assert events(r1) == [{"sender": alice.user_id, "type": "org.example.ping",
                           "content": {"n": 1}}]
    assert events(await sync(api, bob2, s2["next_batch"])) == []
    # A retry with the old since (response lost) gets it again; the next since acknowledges.
    assert events(await sync(api, bob1, s1["next_batch"])) == events(r1)
    r2 = await sync(api, bob1, r1["next_batch"])
    assert events(r2) == []
    assert await count_messages() == 0
    # The same txnId for another event type is another transaction.
    await send(api, alice, {bob_id: {bob1.device_id: {"n": 2}}}, "t1", "org.example.other")
    assert [e["type"] for e in events(await sync(api, bob1, r2["next_batch"]))] == [
        "org.example.other"]


async def test_wildcard_reaches_every_device_and_unknown_devices_are_ignored(api):
    alice = await login_device(api, await amake_user())
    bob_id = await amake_user()
    bob1, bob2 = await login_device(api, bob_id), await login_device(api, bob_id)
    await send(api, alice, {bob_id: {"*": {"all": True}, bob2.device_id: {"only": 2},
                                     "NOSUCHDEVICE": {"x": 1}}}, "w1")
    assert [e["content"] for e in events(await sync(api, bob1))] == [{"all": True}]
    assert [e["content"] for e in events(await sync(api, bob2))] == [{"only": 2}]
    assert await count_messages() == 2


async def test_large_queues_are_delivered_100_at_a_time_in_order(api):
    alice = await login_device(api, await amake_user())
    bob = await login_device(api, await amake_user())
    # One request carries at most one message per device: 150 transactions.
    for i in range(150):
        await send(api, alice, {bob.user_id: {bob.device_id: {"i": i}}}, f"batch{i}")
    first = await sync(api, bob)
    assert [e["content"]["i"] for e in events(first)] == list(range(100))
    second = await sync(api, bob, first["next_batch"])
    assert [e["content"]["i"] for e in events(second)] == list(range(100, 150))
    third = await sync(api, bob, second["next_batch"])
    assert events(third) == []
    assert await count_messages() == 0


async def test_removed_device_loses_its_inbox(api):
    alice = await login_device(api, await amake_user())
    bob_id = await amake_user()
    bob1, bob2 = await login_device(api, bob_id), await login_device(api, bob_id)
    await send(api, alice, {bob_id: {"*": {"x": 1}}}, "r1")
    assert await count_messages() == 2
    first = await api.call("POST", "/delete_devices", {"devices": [bob2.device_id]},
                           token=bob1.token)
    await api.call("POST", "/delete_devices", {"devices": [bob2.device_id], "auth": {
        "type": "m.login.password", "session": first.json()["session"], "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": bob_id}}}, token=bob1.token)
    assert await count_messages() == 1


async def test_a_message_wakes_the_waiting_device(api):
    alice = await login_device(api, await amake_user())
    bob = await login_device(api, await amake_user())
    b0 = await sync(api, bob)
    waiting = asyncio.create_task(sync(api, bob, b0["next_batch"], timeout=20000))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    await send(api, alice, {bob.user_id: {bob.device_id: {"wake": "up"}}}, "wake")
    resp = await asyncio.wait_for(waiting, 25)
    assert [e["content"] for e in events(resp)] == [{"wake": "up"}]
    assert time.monotonic() - started < 10


async def test_bad_requests_queue_nothing(api):
    alice = await login_device(api, await amake_user())
    bob = await login_device(api, await amake_user())
    ok = {bob.user_id: {bob.device_id: {"ok": 1}}}
    cases = [
        ({}, "M_MISSING_PARAM"),
        ({"messages": []}, "M_BAD_JSON"),
        # A valid entry next to the bad one is not queued either.
        ({"messages": {**ok, "not-a-user": {"D": {}}}}, "M_INVALID_PARAM"),
        ({"messages": {**ok, "@u:localhost:8008": ["D"]}}, "M_BAD_JSON"),
        ({"messages": {**ok, "@u:localhost:8008": {"D": "text"}}}, "M_BAD_JSON"),
    ]
    for body, errcode in cases:
        r = await api.call("PUT", "/sendToDevice/org.example.ping/bad", body, token=alice.token)
        assert (r.status_code, r.json()["errcode"]) == (400, errcode), body
        assert await count_messages() == 0
    r = await api.call("PUT", "/sendToDevice/org.example.ping/" + "t" * 256, {"messages": ok},
                       token=alice.token)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert await count_messages() == 0
    # The transaction id was not used up by the failed requests.
    await send(api, alice, ok, "bad")
    assert await count_messages() == 1


async def test_remote_recipients_are_accepted_but_not_stored_locally(api):
    alice = await login_device(api, await amake_user())
    await send(api, alice, {"@carol:remote.example": {"*": {"x": 1}}}, "remote")
    assert await count_messages() == 0
