"""Delivery to a real HTTP push gateway (started per test on a loopback port): the payload
with and without content (compliance "Push": include_content=false carries no content and no
sender names), the event_id_only format, retries with backoff, gateway rejections, and who is
never pushed. Deliveries run in a thread (embedded mode) or in a real Celery worker process
(Redis configured: the `celery_worker` fixture starts one)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from audit.models import AuditRecord
from homeserver.config import PushConfig
from tests.accounts.conftest import configure
from tests.ephemeral.chat import room_with, send, session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]

PUSHKEY = "device-routing-token-1"


async def set_pusher(api, tok, url, **data):
    r = await api.call("POST", "/pushers/set", {
        "kind": "http", "app_id": "org.example.app", "pushkey": PUSHKEY,
        "app_display_name": "Example", "device_display_name": "Bob's phone", "lang": "en",
        "data": {"url": url, **data},
    }, token=tok)
    assert r.status_code == 200, r.json()


async def setup(api, gateway, **data):
    alice, atok = await session(api)
    bob, btok = await session(api)
    carol, ctok = await session(api)
    room = await room_with(api, atok, (bob, btok), (carol, ctok), name="Ward 7 handover")
    r = await api.call("PUT", f"/profile/{alice}/displayname", {"displayname": "Dr Alice"},
                       token=atok)  # propagated into the room as a new member event
    assert r.status_code == 200
    await set_pusher(api, btok, gateway.url, **data)
    return alice, atok, bob, btok, ctok, room


async def test_full_notification_reaches_the_gateway(api, gateway):
    alice, atok, _, _btok, _, room = await setup(api, gateway, custom="kept")
    ev = await send(api, atok, room, "Bed 4 needs review")
    (req,) = await asyncio.to_thread(gateway.wait_for, 1)
    assert req["path"] == "/_matrix/push/v1/notify"
    n = req["body"]["notification"]
    assert n["event_id"] == ev and n["room_id"] == room
    assert n["type"] == "m.room.message" and n["sender"] == alice
    assert n["sender_display_name"] == "Dr Alice" and n["room_name"] == "Ward 7 handover"
    assert n["content"] == {"msgtype": "m.text", "body": "Bed 4 needs review"}
    assert n["counts"] == {"unread": 1} and n["prio"] == "low"
    (device,) = n["devices"]
    assert device["app_id"] == "org.example.app" and device["pushkey"] == PUSHKEY
    assert isinstance(device["pushkey_ts"], int)
    assert device["data"] == {"custom": "kept"}  # forwarded without url
    assert device["tweaks"] == {}


async def test_include_content_false_sends_ids_and_counts_only(api, gateway, settings):
    configure(settings, push={"include_content": False})
    alice, atok, bob, _, ctok, room = await setup(api, gateway)
    await send(api, ctok, room, "first")
    ev = await send(api, atok, room, "Patient Meyer, bed 4",
                    **{"m.mentions": {"user_ids": [bob]}})
    reqs = await asyncio.to_thread(gateway.wait_for, 2)
    (n,) = [r["body"]["notification"] for r in reqs
            if r["body"]["notification"]["event_id"] == ev]  # deliveries may arrive in any order
    assert set(n) == {"event_id", "room_id", "counts", "prio", "devices"}
    assert n["event_id"] == ev and n["counts"] == {"unread": 2} and n["prio"] == "high"
    assert n["devices"][0]["tweaks"] == {"sound": "default", "highlight": True}
    for raw in gateway.raw:
        for secret in (b"Meyer", b"first", b"Dr Alice", alice.encode(), b"Ward 7",
                       b"m.room.message"):
            assert secret not in raw


def test_profiles_decide_the_default():
    cfg = PushConfig()
    assert cfg.include_content_for("standard") is True
    for profile in ("ti-m-basis", "ti-m-pro", "ti-m-epa", "bwmessenger", "strict"):
        assert cfg.include_content_for(profile) is False
    assert PushConfig(include_content=False).include_content_for("standard") is False
    assert PushConfig(include_content=True).include_content_for("ti-m-pro") is True


async def test_event_id_only_format_is_honoured(api, gateway):
    _, atok, _, _, _, room = await setup(api, gateway, format="event_id_only")
    ev = await send(api, atok, room, "secret words")
    (req,) = await asyncio.to_thread(gateway.wait_for, 1)
    n = req["body"]["notification"]
    assert set(n) == {"event_id", "room_id", "counts", "prio", "devices"}
    assert n["event_id"] == ev and n["devices"][0]["data"] == {"format": "event_id_only"}
    assert b"secret words" not in gateway.raw[0]


async def test_failed_deliveries_are_retried_with_backoff(api, gateway, celery_worker):
    gateway.statuses = [500, 502]
    _, atok, _, _, _, room = await setup(api, gateway)
    ev = await send(api, atok, room, "retry me")
    reqs = await asyncio.to_thread(gateway.wait_for, 3)
    assert [r["status"] for r in reqs] == [500, 502, 200]
    assert {r["body"]["notification"]["event_id"] for r in reqs} == {ev}
    if celery_worker is not None:  # Redis: the worker process did it, retrying via the queue
        log = celery_worker.log_path.read_text()
        assert log.count(": 'retry'") >= 2 and ": 'done'" in log


async def test_rejected_pushkeys_remove_the_pusher(api, gateway):
    gateway.rejected = [PUSHKEY]
    _, atok, bob, btok, _, room = await setup(api, gateway)
    await send(api, atok, room, "one")
    await asyncio.to_thread(gateway.wait_for, 1)
    for _ in range(100):
        pushers = (await api.call("GET", "/pushers", token=btok)).json()["pushers"]
        if not pushers:
            break
        await asyncio.sleep(0.1)
    assert pushers == []
    rec = await sync_to_async(lambda: AuditRecord.objects.filter(target=bob).order_by(
        "-seq").first())()
    assert rec.action == 1302 and rec.actor_type == "remote_server"
    assert PUSHKEY not in rec.details


async def test_own_and_non_notifying_events_are_not_pushed(api, gateway):
    _, atok, _, btok, ctok, room = await setup(api, gateway)
    await send(api, btok, room, "my own message")
    await send(api, ctok, room, "a notice", msgtype="m.notice")
    r = await api.call("PUT", f"/rooms/{room}/send/m.reaction/r1", {}, token=ctok)
    assert r.status_code == 200
    ev = await send(api, atok, room, "this one")
    (req,) = await asyncio.to_thread(gateway.wait_for, 1)
    assert req["body"]["notification"]["event_id"] == ev
    await asyncio.sleep(0.3)
    assert len(gateway.requests) == 1
