"""Receipts, read markers and the unread counts that follow them, over HTTP: who sees which
receipt through /sync, threaded and private receipts, m.fully_read in room account data, counts
of notifying events after the read marks (and after the user's own messages), and each bad
request, with nothing stored."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from homeserver.models import AccountData, Receipt
from tests.ephemeral.chat import (
    counts,
    ephemeral,
    room_with,
    send,
    session,
    stream_position,
    sync,
)

pytestmark = pytest.mark.django_db(transaction=True)

count_receipts = sync_to_async(lambda: Receipt.objects.count())
count_fully_read = sync_to_async(lambda: AccountData.objects.filter(type="m.fully_read").count())


async def receipt(api, tok, room, rtype, event_id, body=None):
    return await api.call("POST", f"/rooms/{room}/receipt/{rtype}/{event_id}",
                          body if body is not None else {}, token=tok)


def receipts_of(resp, room) -> dict:
    events = ephemeral(resp, room, "m.receipt")
    assert len(events) <= 1  # batched: one event per room
    return events[0]["content"] if events else {}


async def test_read_receipt_reaches_members_not_outsiders(api):
    _alice, atok = await session(api)
    bob, btok = await session(api)
    _, ctok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    ev = await send(api, atok, room, "bed 4")
    a0, c0 = await sync(api, atok), await sync(api, ctok)
    r = await receipt(api, btok, room, "m.read", ev)
    assert (r.status_code, r.json()) == (200, {})
    a1 = await sync(api, atok, a0["next_batch"])
    content = receipts_of(a1, room)
    assert list(content) == [ev] and list(content[ev]["m.read"]) == [bob]
    assert isinstance(content[ev]["m.read"][bob]["ts"], int)
    assert "thread_id" not in content[ev]["m.read"][bob]
    assert room not in (await sync(api, ctok, c0["next_batch"]))["rooms"]["join"]
    assert receipts_of(await sync(api, atok, a1["next_batch"]), room) == {}  # delivered once
    # A fresh initial sync carries the current receipts.
    assert bob in receipts_of(await sync(api, atok), room)[ev]["m.read"]


async def test_private_receipts_only_reach_their_owner(api):
    _alice, atok = await session(api)
    bob, btok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    ev = await send(api, atok, room)
    a0, b0 = await sync(api, atok), await sync(api, btok)
    assert (await receipt(api, btok, room, "m.read.private", ev)).status_code == 200
    assert receipts_of(await sync(api, atok, a0["next_batch"]), room) == {}
    assert receipts_of(await sync(api, atok), room) == {}
    mine = receipts_of(await sync(api, btok, b0["next_batch"]), room)
    assert list(mine[ev]) == ["m.read.private"] and bob in mine[ev]["m.read.private"]


async def test_threaded_receipts_carry_their_thread(api):
    _alice, atok = await session(api)
    bob, btok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    root = await send(api, atok, room, "root")
    reply = await send(api, atok, room, "in thread",
                       **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    a0 = await sync(api, atok)
    assert (await receipt(api, btok, room, "m.read", reply, {"thread_id": root})).status_code \
        == 200
    assert (await receipt(api, btok, room, "m.read", root, {"thread_id": "main"})).status_code \
        == 200
    content = receipts_of(await sync(api, atok, a0["next_batch"]), room)
    assert content[reply]["m.read"][bob]["thread_id"] == root
    assert content[root]["m.read"][bob]["thread_id"] == "main"
    # A thread root may also carry a receipt for its own thread.
    assert (await receipt(api, btok, room, "m.read", root, {"thread_id": root})).status_code \
        == 200
    before = await count_receipts()
    for event_id, thread in ((reply, "main"), (root, "$other")):
        r = await receipt(api, btok, room, "m.read", event_id, {"thread_id": thread})
        assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert await count_receipts() == before


async def test_fully_read_goes_to_room_account_data_only(api):
    _alice, atok = await session(api)
    bob, btok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    e1 = await send(api, atok, room, "one")
    e2 = await send(api, atok, room, "two")
    b0, a0 = await sync(api, btok), await sync(api, atok)
    r = await receipt(api, btok, room, "m.fully_read", e1)
    assert r.status_code == 200
    b1 = await sync(api, btok, b0["next_batch"])
    assert b1["rooms"]["join"][room]["account_data"]["events"] == [
        {"type": "m.fully_read", "content": {"event_id": e1}}]
    assert receipts_of(b1, room) == {}
    assert room not in (await sync(api, atok, a0["next_batch"]))["rooms"]["join"]
    r = await api.call("POST", f"/rooms/{room}/read_markers",
                       {"m.fully_read": e2, "m.read": e2, "m.read.private": e2}, token=btok)
    assert (r.status_code, r.json()) == (200, {})
    b2 = await sync(api, btok, b1["next_batch"])
    assert b2["rooms"]["join"][room]["account_data"]["events"][0]["content"] == {"event_id": e2}
    assert set(receipts_of(b2, room)[e2]) == {"m.read", "m.read.private"}
    # Clients still cannot write m.fully_read as plain account data.
    r = await api.call("PUT", f"/user/{bob}/rooms/{room}/account_data/m.fully_read",
                       {"event_id": e1}, token=btok)
    assert (r.status_code, r.json()["errcode"]) == (405, "M_BAD_JSON")


async def test_receipts_never_move_back(api):
    _alice, atok = await session(api)
    bob, btok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    e1 = await send(api, atok, room, "one")
    e2 = await send(api, atok, room, "two")
    await receipt(api, btok, room, "m.read", e2)
    a0 = await sync(api, atok)
    before = await stream_position()
    assert (await receipt(api, btok, room, "m.read", e1)).status_code == 200
    assert await stream_position() == before
    assert receipts_of(await sync(api, atok, a0["next_batch"]), room) == {}
    assert bob in receipts_of(await sync(api, atok), room)[e2]["m.read"]


async def test_unread_counts_follow_receipts_and_own_messages(api):
    _alice, atok = await session(api)
    bob, btok = await session(api)
    carol, ctok = await session(api)
    room = await room_with(api, atok, (bob, btok), (carol, ctok))  # three members: no 1:1 rule
    b0 = await sync(api, btok)
    e = [await send(api, atok, room, f"note {i}") for i in range(3)]
    b1 = await sync(api, btok, b0["next_batch"])
    assert counts(b1, room) == (3, 0)
    assert counts(await sync(api, atok), room) == (0, 0)  # own messages never notify
    await receipt(api, btok, room, "m.read", e[1])
    b2 = await sync(api, btok, b1["next_batch"])  # the own receipt brings the room back
    assert counts(b2, room) == (1, 0)
    await receipt(api, btok, room, "m.read.private", e[2])
    assert counts(await sync(api, btok, b2["next_batch"]), room) == (0, 0)
    # Sending marks what precedes as read (spec "Marking notifications as read").
    await send(api, atok, room, "four")
    assert counts(await sync(api, btok), room) == (1, 0)
    await send(api, btok, room, "seen")
    assert counts(await sync(api, btok), room) == (0, 0)
    # Mentions highlight.
    await send(api, ctok, room, "bob?", **{"m.mentions": {"user_ids": [bob]}})
    await send(api, ctok, room, "anyone")
    assert counts(await sync(api, btok), room) == (2, 1)


async def test_thread_receipts_clear_only_their_thread(api):
    _alice, atok = await session(api)
    bob, btok = await session(api)
    carol, ctok = await session(api)
    room = await room_with(api, atok, (bob, btok), (carol, ctok))
    root = await send(api, atok, room, "root")
    reply = await send(api, atok, room, "reply",
                       **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    main2 = await send(api, atok, room, "main again")
    assert counts(await sync(api, btok), room) == (3, 0)
    await receipt(api, btok, room, "m.read", main2, {"thread_id": "main"})
    assert counts(await sync(api, btok), room) == (1, 0)  # the thread reply is still unread
    await receipt(api, btok, room, "m.read", reply, {"thread_id": root})
    assert counts(await sync(api, btok), room) == (0, 0)


async def test_bad_receipts_and_markers_store_nothing(api):
    _alice, atok = await session(api)
    bob, btok = await session(api)
    _, ctok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    other_room = await room_with(api, atok)
    ev = await send(api, atok, room)
    elsewhere = await send(api, atok, other_room)
    before = await stream_position()
    cases = [
        (btok, "m.unknown", ev, {}, 400, "M_INVALID_PARAM"),
        (btok, "m.read", ev, {"thread_id": ""}, 400, "M_INVALID_PARAM"),
        (btok, "m.read", ev, {"thread_id": 7}, 400, "M_INVALID_PARAM"),
        (btok, "m.fully_read", ev, {"thread_id": "main"}, 400, "M_INVALID_PARAM"),
        (ctok, "m.read", ev, {}, 403, "M_FORBIDDEN"),  # not in the room
        (btok, "m.read", "$unknown", {}, 404, "M_NOT_FOUND"),
        (btok, "m.read", elsewhere, {}, 404, "M_NOT_FOUND"),  # event of another room
        (btok, "m.fully_read", "$unknown", {}, 404, "M_NOT_FOUND"),
    ]
    for tok, rtype, event_id, body, status, errcode in cases:
        r = await receipt(api, tok, room, rtype, event_id, body)
        assert (r.status_code, r.json()["errcode"]) == (status, errcode), (rtype, body)
    markers = [
        ({"m.fully_read": ev, "m.read": 5}, 400, "M_BAD_JSON"),
        ({"m.fully_read": ev, "m.read": "$unknown"}, 404, "M_NOT_FOUND"),
    ]
    for body, status, errcode in markers:
        r = await api.call("POST", f"/rooms/{room}/read_markers", body, token=btok)
        assert (r.status_code, r.json()["errcode"]) == (status, errcode), body
    r = await api.call("POST", f"/rooms/{room}/read_markers", {"m.fully_read": ev}, token=ctok)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = await api.call("POST", f"/rooms/{room}/read_markers", raw=b"[]", token=btok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON")
    assert await count_receipts() == 0 and await count_fully_read() == 0
    assert await stream_position() == before
