"""Push end to end: the real server process (`[push] include_content = false`, the TI-M /
BwMessenger setting), a real Matrix client library (matrix-nio) sending, a pusher registered over
HTTP, and a real push gateway on a loopback port capturing what arrives. With Redis configured
the server hands deliveries to Celery, so a real worker process runs beside it."""

from __future__ import annotations

import asyncio
import os
import uuid

import httpx
import nio
import pytest

from tests.live_server import start_server
from tests.push.conftest import start_worker, stop_worker, worker_env
from tests.push.gateway import Gateway

pytestmark = pytest.mark.live
PASSWORD = "a long and proper password"


@pytest.fixture(scope="module")
def gateway():
    g = Gateway()
    yield g
    g.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live-push")
    queue = f"palisade-live-push-{uuid.uuid4().hex[:10]}"
    s = start_server(tmp, push={"include_content": False, "allow_http_gateways": True,
                                "backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.2,
                                "celery_queue": queue})
    worker = None
    try:
        redis_url = os.environ.get("PALISADE_REDIS_URL", "")
        if redis_url:
            env = worker_env(s.database_url, redis_url, queue,
                             PALISADE_CONFIG=str(s.config_path))
            worker = start_worker(env, queue, tmp / "worker.log")
        yield s
    finally:
        if worker is not None:
            stop_worker(worker)
        s.stop()


async def login(server, localpart: str) -> nio.AsyncClient:
    await asyncio.to_thread(server.register_user, localpart, PASSWORD)
    client = nio.AsyncClient(server.base_url, f"@{localpart}:{server.server_name}")
    resp = await client.login(PASSWORD, device_name=f"{localpart}'s phone")
    assert isinstance(resp, nio.LoginResponse), resp
    return client


async def test_notification_without_content_reaches_a_real_gateway(server, gateway):
    alice, bob = await login(server, "alice"), await login(server, "bob")
    try:
        await alice.set_displayname("Dr Alice Example")
        room = (await alice.room_create(name="Ward 9 handover", invite=[bob.user_id])).room_id
        assert isinstance(await bob.join(room), nio.JoinResponse)
        headers = {"Authorization": f"Bearer {bob.access_token}"}
        pusher = {"kind": "http", "app_id": "org.example.app", "pushkey": "bobs-device-token",
                  "app_display_name": "Example", "device_display_name": "Bob's phone",
                  "lang": "en", "data": {"url": gateway.url, "custom": "kept"}}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:
            bad = await http.post("/_matrix/client/v3/pushers/set", json={
                **pusher, "pushkey": "other", "data": {"url": "https://x.example/notify"}})
            assert (bad.status_code, bad.json()["errcode"]) == (400, "M_INVALID_PARAM")
            ok = await http.post("/_matrix/client/v3/pushers/set", json=pusher)
            assert ok.status_code == 200, ok.text
            listed = (await http.get("/_matrix/client/v3/pushers")).json()["pushers"]
            assert [p["pushkey"] for p in listed] == ["bobs-device-token"]

        sent = await alice.room_send(room, "m.room.message",
                                     {"msgtype": "m.text", "body": "Patient Meyer, bed 4"})
        assert isinstance(sent, nio.RoomSendResponse), sent
        (req,) = await asyncio.to_thread(gateway.wait_for, 1, 60)
        n = req["body"]["notification"]
        assert set(n) == {"event_id", "room_id", "counts", "prio", "devices"}
        assert (n["event_id"], n["room_id"], n["counts"]) == (sent.event_id, room, {"unread": 1})
        (device,) = n["devices"]
        assert device["pushkey"] == "bobs-device-token" and device["data"] == {"custom": "kept"}
        assert device["tweaks"] == {"sound": "default"}  # .m.rule.room_one_to_one
        raw = gateway.raw[0]
        for secret in (b"Meyer", b"Dr Alice", alice.user_id.encode(), b"Ward 9",
                       b"m.room.message"):
            assert secret not in raw

        # Bob turns the two rules off that notify him here: the next message is not pushed,
        # and a later one (after switching one back on) is.
        for rule in (".m.rule.room_one_to_one", ".m.rule.message"):
            r = await bob.enable_pushrule("global", nio.api.PushRuleKind.underride, rule, False)
            assert isinstance(r, nio.EnablePushRuleResponse), r
        await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "quiet"})
        await bob.enable_pushrule("global", nio.api.PushRuleKind.underride, ".m.rule.message",
                                  True)
        loud = await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "!"})
        reqs = await asyncio.to_thread(gateway.wait_for, 2, 60)
        assert reqs[1]["body"]["notification"]["event_id"] == loud.event_id
        assert reqs[1]["body"]["notification"]["counts"] == {"unread": 2}
        await asyncio.sleep(0.5)
        assert len(gateway.requests) == 2  # "quiet" was never pushed
    finally:
        await alice.close()
        await bob.close()
