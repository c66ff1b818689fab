"""Typing, receipts, read markers, presence and push rules through the real server with a real
Matrix client library (matrix-nio): each reaches the other member's /sync and never the /sync
of a user outside the room; a push rule change changes the unread counts; refusals carry the
right status and errcode."""

from __future__ import annotations

import asyncio

import nio
import pytest

from tests.live_server import start_server

pytestmark = pytest.mark.live
PASSWORD = "a long and proper password"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("live-ephemeral"))
    yield s
    s.stop()


async def login(server, localpart: str) -> nio.AsyncClient:
    await asyncio.to_thread(server.register_user, localpart, PASSWORD)
    client = nio.AsyncClient(server.base_url, f"@{localpart}:{server.server_name}")
    resp = await client.login(PASSWORD, device_name=f"{localpart}'s phone")
    assert isinstance(resp, nio.LoginResponse), resp
    return client


async def synced(client: nio.AsyncClient, since: str | None, **kw) -> nio.SyncResponse:
    resp = await client.sync(timeout=0, since=since, **kw)
    assert isinstance(resp, nio.SyncResponse), resp
    return resp


def ephemeral(resp: nio.SyncResponse, room_id: str, kind: type) -> list:
    room = resp.rooms.join.get(room_id)
    return [e for e in room.ephemeral if isinstance(e, kind)] if room else []


async def trio(server, tag: str):
    alice, bob, carol = [await login(server, f"{n}-{tag}") for n in ("alice", "bob", "carol")]
    created = await alice.room_create(name=f"Ward {tag}", invite=[bob.user_id])
    assert isinstance(created, nio.RoomCreateResponse), created
    assert isinstance(await bob.join(created.room_id), nio.JoinResponse)
    return alice, bob, carol, created.room_id


async def close(*clients: nio.AsyncClient) -> None:
    for c in clients:
        await c.close()


async def test_typing_and_receipts_reach_members_only(server):
    alice, bob, carol, room = await trio(server, "t")
    try:
        b0, c0 = await synced(bob, None), await synced(carol, None)
        typed = await alice.room_typing(room, True, timeout=30000)
        assert isinstance(typed, nio.RoomTypingResponse), typed
        b1 = await synced(bob, b0.next_batch)
        (notice,) = ephemeral(b1, room, nio.TypingNoticeEvent)
        assert notice.users == [alice.user_id]
        c1 = await synced(carol, c0.next_batch)
        assert room not in c1.rooms.join

        sent = await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "hi"})
        b2 = await synced(bob, b1.next_batch)
        a0 = await synced(alice, None)
        marked = await bob.update_receipt_marker(room, sent.event_id)  # nio: thread_id "main"
        assert isinstance(marked, nio.UpdateReceiptMarkerResponse), marked
        a1 = await synced(alice, a0.next_batch)
        (receipts,) = ephemeral(a1, room, nio.ReceiptEvent)
        (r,) = receipts.receipts
        assert (r.event_id, r.receipt_type, r.user_id, r.thread_id) == (
            sent.event_id, "m.read", bob.user_id, "main")
        assert room not in (await synced(carol, c1.next_batch)).rooms.join

        # Read markers: m.fully_read to Bob's room account data, m.read to everyone in the room.
        more = await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "2"})
        markers = await bob.room_read_markers(room, more.event_id, more.event_id)
        assert isinstance(markers, nio.RoomReadMarkersResponse), markers
        b3 = await synced(bob, b2.next_batch)
        fully = [e for e in b3.rooms.join[room].account_data
                 if isinstance(e, nio.FullyReadEvent)]
        assert [e.event_id for e in fully] == [more.event_id]
        a2 = await synced(alice, a1.next_batch)
        (receipts,) = ephemeral(a2, room, nio.ReceiptEvent)
        assert [(x.event_id, x.user_id) for x in receipts.receipts] == [
            (more.event_id, bob.user_id)]

        # Refusals: typing where one is not a member, receipts of an unknown type.
        refused = await carol.room_typing(room, True)
        assert isinstance(refused, nio.RoomTypingError)
        assert (refused.transport_response.status, refused.status_code) == (403, "M_FORBIDDEN")
        bad = await bob.update_receipt_marker(room, more.event_id,
                                              receipt_type=nio.api.ReceiptType.fully_read)
        assert isinstance(bad, nio.UpdateReceiptMarkerError)  # thread_id "main" on fully_read
        assert (bad.transport_response.status, bad.status_code) == (400, "M_INVALID_PARAM")
    finally:
        await close(alice, bob, carol)


async def test_presence_reaches_people_sharing_a_room_only(server):
    alice, bob, carol, _ = await trio(server, "p")
    try:
        a0 = await synced(alice, None, set_presence="offline")
        c0 = await synced(carol, None, set_presence="offline")
        set_resp = await bob.set_presence("unavailable", "in surgery")
        assert isinstance(set_resp, nio.PresenceSetResponse), set_resp
        a1 = await synced(alice, a0.next_batch, set_presence="offline")
        (p,) = [e for e in a1.presence_events if e.user_id == bob.user_id]
        assert (p.presence, p.status_msg) == ("unavailable", "in surgery")
        c1 = await synced(carol, c0.next_batch, set_presence="offline")
        assert bob.user_id not in {e.user_id for e in c1.presence_events}
        got = await alice.get_presence(bob.user_id)
        assert isinstance(got, nio.PresenceGetResponse) and got.presence == "unavailable"
        denied = await carol.get_presence(bob.user_id)
        assert isinstance(denied, nio.PresenceGetError)
        assert (denied.transport_response.status, denied.status_code) == (403, "M_FORBIDDEN")
        # Syncing with set_presence=online marks Bob online again, visibly to Alice. (nio
        # remembers the presence it last set and sends it with every sync by itself.)
        await synced(bob, None, set_presence="online")
        a2 = await synced(alice, a1.next_batch, set_presence="offline")
        assert [e.presence for e in a2.presence_events if e.user_id == bob.user_id] == ["online"]
    finally:
        await close(alice, bob, carol)


async def test_a_push_rule_change_changes_the_counts(server):
    alice, bob, carol, room = await trio(server, "c")
    try:
        await carol.join(room)  # not invited: refused, Carol stays outside
        b0 = await synced(bob, None)
        await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "one"})
        b1 = await synced(bob, b0.next_batch)
        assert b1.rooms.join[room].unread_notifications.notification_count == 1
        # A 1:1 room: .m.rule.room_one_to_one notifies. Bob mutes the room with a room rule.
        muted = await bob.set_pushrule("global", nio.api.PushRuleKind.room, room, actions=[])
        assert isinstance(muted, nio.SetPushRuleResponse), muted
        await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "two"})
        b2 = await synced(bob, b1.next_batch)
        assert b2.rooms.join[room].unread_notifications.notification_count == 1
        # Re-enabled with a highlight: the next message counts and highlights.
        await bob.set_pushrule_actions("global", nio.api.PushRuleKind.room, room,
                                       [nio.PushNotify(), nio.PushSetTweak("highlight", True)])
        await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "three"})
        b3 = await synced(bob, b2.next_batch)
        unread = b3.rooms.join[room].unread_notifications
        assert (unread.notification_count, unread.highlight_count) == (2, 1)
        gone = await bob.delete_pushrule("global", nio.api.PushRuleKind.room, "!nope:x")
        assert isinstance(gone, nio.DeletePushRuleError)
        assert (gone.transport_response.status, gone.status_code) == (404, "M_NOT_FOUND")
    finally:
        await close(alice, bob, carol)


async def test_typing_is_shared_between_worker_processes(tmp_path):
    """Two worker processes sharing Redis: typing set through either reaches a long-poll
    waiting in either, and the end of a typing period (the timer in the process that took the
    request) wakes it too. Over 4 rounds both directions occur with probability 7/8."""
    import os

    import redis

    url = os.environ.get("PALISADE_REDIS_URL") or "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("needs Redis for the shared channel layer (CI always has it)")
    s = await asyncio.to_thread(start_server, tmp_path, workers=2, redis={"url": url})
    alice = bob = None
    try:
        alice, bob, carol, room = await trio(s, "w")
        await carol.close()
        since = (await synced(bob, None)).next_batch
        for i in range(4):
            waiting = asyncio.create_task(bob.sync(timeout=20000, since=since))
            await asyncio.sleep(0.3)
            await alice.room_typing(room, True, timeout=1500)
            resp = await asyncio.wait_for(waiting, 25)
            assert isinstance(resp, nio.SyncResponse), resp
            assert [e.users for e in ephemeral(resp, room, nio.TypingNoticeEvent)] == [
                [alice.user_id]], i
            # The period ends by itself; Bob's next long-poll is woken by the stop.
            resp = await asyncio.wait_for(bob.sync(timeout=20000, since=resp.next_batch), 25)
            assert [e.users for e in ephemeral(resp, room, nio.TypingNoticeEvent)] == [[]], i
            since = resp.next_batch
    finally:
        for c in (alice, bob):
            if c is not None:
                await c.close()
        await asyncio.to_thread(s.stop)
