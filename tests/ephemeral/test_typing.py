"""Typing notifications over HTTP: who sees them through /sync, since-tokens, stopping,
expiry (by the timer and by the lazy path), long-poll wake-ups, and each bad request."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from homeserver.models import TypingState
from homeserver.services.ephemeral.typing import do_set_typing
from tests.ephemeral.chat import ephemeral, room_with, send, session, stream_position, sync

pytestmark = pytest.mark.django_db(transaction=True)

count_rows = sync_to_async(lambda: TypingState.objects.count())


async def typing(api, tok, room, user, body):
    return await api.call("PUT", f"/rooms/{room}/typing/{user}", body, token=tok)


async def test_typing_reaches_members_not_outsiders_and_stops(api):
    alice, atok = await session(api)
    bob, btok = await session(api)
    _, ctok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    b0 = await sync(api, btok)
    c0 = await sync(api, ctok)
    r = await typing(api, atok, room, alice, {"typing": True, "timeout": 30000})
    assert (r.status_code, r.json()) == (200, {})
    b1 = await sync(api, btok, b0["next_batch"])
    assert ephemeral(b1, room, "m.typing") == [
        {"type": "m.typing", "content": {"user_ids": [alice]}}]
    c1 = await sync(api, ctok, c0["next_batch"])
    assert room not in c1["rooms"]["join"]
    # An initial sync shows who is typing now; nothing new since the last token.
    assert ephemeral(await sync(api, btok), room, "m.typing")[0]["content"]["user_ids"] == [alice]
    assert ephemeral(await sync(api, btok, b1["next_batch"]), room, "m.typing") == []
    # Typing again only extends the period: nobody else can see that, no stream position.
    before = await stream_position()
    await typing(api, atok, room, alice, {"typing": True, "timeout": 30000})
    assert await stream_position() == before
    # Stopping replaces the list with an empty one.
    await typing(api, atok, room, alice, {"typing": False})
    b2 = await sync(api, btok, b1["next_batch"])
    assert ephemeral(b2, room, "m.typing") == [{"type": "m.typing", "content": {"user_ids": []}}]


async def test_two_typists_and_the_own_user(api):
    alice, atok = await session(api)
    bob, btok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    await typing(api, atok, room, alice, {"typing": True, "timeout": 30000})
    await typing(api, btok, room, bob, {"typing": True, "timeout": 30000})
    users = ephemeral(await sync(api, atok), room, "m.typing")[0]["content"]["user_ids"]
    assert users == sorted([alice, bob])


async def test_timer_ends_typing_and_wakes_a_waiting_sync(api):
    alice, atok = await session(api)
    bob, btok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    since = (await sync(api, btok))["next_batch"]
    # 3 s: long enough that Bob's first sync still sees the typing on a loaded machine.
    await typing(api, atok, room, alice, {"typing": True, "timeout": 3000})
    b1 = await sync(api, btok, since)
    assert ephemeral(b1, room, "m.typing")[0]["content"]["user_ids"] == [alice]
    # Bob long-polls; the timer (on this event loop) writes the stop and wakes him well before
    # the long-poll's own 30 s timeout.
    started = time.monotonic()
    b2 = await sync(api, btok, b1["next_batch"], timeout=30000)
    assert time.monotonic() - started < 20
    assert ephemeral(b2, room, "m.typing") == [{"type": "m.typing", "content": {"user_ids": []}}]


async def test_a_due_period_without_its_timer_is_ended_by_the_next_sync(api):
    alice, atok = await session(api)
    bob, btok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    since = (await sync(api, btok))["next_batch"]
    # The service without the view: no timer is scheduled (as if its process had died).
    await sync_to_async(do_set_typing)(alice, room, alice, {"typing": True, "timeout": 50})
    await asyncio.sleep(0.2)
    b1 = await sync(api, btok, since)
    assert ephemeral(b1, room, "m.typing") == [{"type": "m.typing", "content": {"user_ids": []}}]
    row = await sync_to_async(TypingState.objects.get)(room_id=room, user_id=alice)
    assert row.expires_ts == 0  # the lazy path wrote the stop
    assert ephemeral(await sync(api, btok, b1["next_batch"]), room, "m.typing") == [
        {"type": "m.typing", "content": {"user_ids": []}}]  # its own position, shown once more
    b3 = await sync(api, btok, (await sync(api, btok))["next_batch"])
    assert ephemeral(b3, room, "m.typing") == []


async def test_typing_wakes_a_long_poll(api):
    alice, atok = await session(api)
    bob, btok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    since = (await sync(api, btok))["next_batch"]
    waiting = asyncio.create_task(sync(api, btok, since, timeout=20000))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await typing(api, atok, room, alice, {"typing": True, "timeout": 30000})
    resp = await asyncio.wait_for(waiting, 25)
    assert time.monotonic() - started < 8
    assert ephemeral(resp, room, "m.typing")[0]["content"]["user_ids"] == [alice]


async def test_bad_typing_requests_store_nothing(api):
    alice, atok = await session(api)
    bob, btok = await session(api)
    _, ctok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    before = await stream_position()
    cases = [
        (btok, alice, {"typing": True, "timeout": 1000}, 403, "M_FORBIDDEN"),  # for another user
        (ctok, alice, {"typing": True, "timeout": 1000}, 403, "M_FORBIDDEN"),
        (atok, alice, {"timeout": 1000}, 400, "M_BAD_JSON"),
        (atok, alice, {"typing": "yes"}, 400, "M_BAD_JSON"),
        (atok, alice, {"typing": True, "timeout": "soon"}, 400, "M_BAD_JSON"),
        (atok, alice, {"typing": True, "timeout": -1}, 400, "M_BAD_JSON"),
    ]
    for tok, user, body, status, errcode in cases:
        r = await typing(api, tok, room, user, body)
        assert (r.status_code, r.json()["errcode"]) == (status, errcode), body
    # Not in the room (a stranger typing for themself), and an unknown room.
    carol = (await api.call("GET", "/account/whoami", token=ctok)).json()["user_id"]
    r = await typing(api, ctok, room, carol, {"typing": True, "timeout": 1000})
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = await typing(api, atok, "!nowhere:localhost:8008", alice, {"typing": True})
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = await api.call("PUT", f"/rooms/{room}/typing/{alice}", raw=b"{nope", token=atok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_NOT_JSON")
    r = await api.call("GET", f"/rooms/{room}/typing/{alice}", token=atok)
    assert (r.status_code, r.json()["errcode"]) == (405, "M_UNRECOGNIZED")
    r = await api.call("PUT", f"/rooms/{room}/typing/{alice}", {"typing": True})
    assert (r.status_code, r.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    assert await count_rows() == 0
    assert await stream_position() == before
    await send(api, atok, room)  # the room still works
