"""Two people chat through the real server with a real Matrix client library (matrix-nio):
create a room, invite, join, exchange messages, long-poll /sync, paginate history — and a send
handled by one worker process wakes a /sync long-poll waiting in another."""

from __future__ import annotations

import asyncio
import os
import time

import nio
import pytest
import redis

from tests.live_server import start_server

pytestmark = pytest.mark.live
PASSWORD = "a long and proper password"


async def login(server, localpart: str) -> nio.AsyncClient:
    await asyncio.to_thread(server.register_user, localpart, PASSWORD)
    client = nio.AsyncClient(server.base_url, localpart)
    resp = await client.login(PASSWORD, device_name=f"{localpart}'s phone")
    assert isinstance(resp, nio.LoginResponse), resp
    return client


async def texts(client: nio.AsyncClient, room_id: str, since: str | None, timeout: int = 0):
    resp = await client.sync(timeout=timeout, since=since, full_state=since is None)
    assert isinstance(resp, nio.SyncResponse), resp
    room = resp.rooms.join.get(room_id)
    bodies = [e.body for e in room.timeline.events if isinstance(e, nio.RoomMessageText)] \
        if room else []
    return resp, bodies


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("live-rooms"))
    yield s
    s.stop()


async def test_two_users_create_invite_join_chat_and_paginate(server):
    alice, bob = await login(server, "alice"), await login(server, "bob")
    try:
        created = await alice.room_create(name="Ward 5 handover", invite=[bob.user_id])
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id

        first = await bob.sync(timeout=0, full_state=True)
        assert room_id in first.rooms.invite
        joined = await bob.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined

        # Alice long-polls; Bob's message must wake her sync well before its timeout.
        a_sync, _ = await texts(alice, room_id, None)
        waiting = asyncio.create_task(texts(alice, room_id, a_sync.next_batch, timeout=20000))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        sent = await bob.room_send(room_id, "m.room.message",
                                   {"msgtype": "m.text", "body": "Bed 4 needs review"})
        assert isinstance(sent, nio.RoomSendResponse), sent
        _, bodies = await asyncio.wait_for(waiting, 25)
        assert bodies == ["Bed 4 needs review"]
        assert time.monotonic() - started < 5

        for i in range(12):
            r = await alice.room_send(room_id, "m.room.message",
                                      {"msgtype": "m.text", "body": f"note {i}"})
            assert isinstance(r, nio.RoomSendResponse), r

        # Bob syncs with a small timeline: limited, then paginates back through the rest.
        limit_filter = {"room": {"timeline": {"limit": 3}}}
        inc = await bob.sync(timeout=0, since=first.next_batch, sync_filter=limit_filter)
        timeline = inc.rooms.join[room_id].timeline
        assert timeline.limited
        assert [e.body for e in timeline.events] == ["note 9", "note 10", "note 11"]
        seen: list[str] = []
        token = timeline.prev_batch
        while True:
            page = await bob.room_messages(room_id, token, direction=nio.MessageDirection.back,
                                           limit=4)
            assert isinstance(page, nio.RoomMessagesResponse), page
            seen += [e.body for e in page.chunk if isinstance(e, nio.RoomMessageText)]
            if not page.end or not page.chunk:
                break
            token = page.end
        assert seen[:9] == [f"note {i}" for i in range(8, -1, -1)]
        assert "Bed 4 needs review" in seen

        members = await alice.joined_members(room_id)
        assert {m.user_id for m in members.members} == {alice.user_id, bob.user_id}
    finally:
        await alice.close()
        await bob.close()


def _redis_url() -> str | None:
    url = os.environ.get("PALISADE_REDIS_URL") or "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return None
    return url


async def test_send_in_one_worker_wakes_long_poll_in_another(tmp_path):
    url = _redis_url()
    if url is None:
        pytest.skip("needs Redis for the shared channel layer (CI always has it)")
    server = await asyncio.to_thread(start_server, tmp_path, workers=2, redis={"url": url})
    alice = bob = None
    try:
        alice, bob = await login(server, "alice"), await login(server, "bob")
        room_id = (await alice.room_create(invite=[bob.user_id])).room_id
        await bob.join(room_id)
        since = (await alice.sync(timeout=0)).next_batch
        # Each round: Alice long-polls (30 s), Bob sends. The kernel spreads connections over
        # both workers, so across 8 rounds the send and the wait land in different processes
        # (all 8 on one side has probability 1/256); every wake must still be prompt.
        for i in range(8):
            waiting = asyncio.create_task(texts(alice, room_id, since, timeout=30000))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            await bob.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": str(i)})
            resp, bodies = await asyncio.wait_for(waiting, 35)
            assert bodies == [str(i)]
            assert time.monotonic() - started < 5, "long-poll was not woken across workers"
            since = resp.next_batch
    finally:
        for c in (alice, bob):
            if c is not None:
                await c.close()
        await asyncio.to_thread(server.stop)
