"""Presence over HTTP: PUT/GET, set_presence on /sync, who sees whom in /sync, idle and
offline derived from inactivity, `[presence] enabled = false`, and each bad request."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache

from homeserver.models import Presence
from homeserver.services.presence.presence import _cache_key
from tests.accounts.conftest import configure
from tests.ephemeral.chat import room_with, session, stream_position, sync

pytestmark = pytest.mark.django_db(transaction=True)

count_rows = sync_to_async(lambda: Presence.objects.count())


def presence_of(resp: dict) -> dict[str, dict]:
    return {e["sender"]: e["content"] for e in resp["presence"]["events"]}


async def put(api, tok, user, body):
    return await api.call("PUT", f"/presence/{user}/status", body, token=tok)


async def test_put_and_get_between_room_members_only(api):
    _alice, atok = await session(api)
    bob, btok = await session(api)
    carol, ctok = await session(api)
    await room_with(api, atok, (bob, btok))
    r = await put(api, btok, bob, {"presence": "unavailable", "status_msg": "in surgery"})
    assert (r.status_code, r.json()) == (200, {})
    got = (await api.call("GET", f"/presence/{bob}/status", token=atok)).json()
    assert got["presence"] == "unavailable" and got["status_msg"] == "in surgery"
    assert 0 <= got["last_active_ago"] < 60_000 and "currently_active" not in got
    assert (await api.call("GET", f"/presence/{bob}/status", token=btok)).status_code == 200
    r = await api.call("GET", f"/presence/{bob}/status", token=ctok)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    # Someone who never set presence reads as offline (to themself).
    assert (await api.call("GET", f"/presence/{carol}/status", token=ctok)).json() == {
        "presence": "offline"}
    r = await put(api, btok, bob, {"presence": "online"})  # no status_msg: cleared
    got = (await api.call("GET", f"/presence/{bob}/status", token=atok)).json()
    assert got["presence"] == "online" and got["currently_active"] is True
    assert "status_msg" not in got


async def test_sync_shows_presence_of_people_sharing_a_room(api):
    _alice, atok = await session(api)
    bob, btok = await session(api)
    _carol, ctok = await session(api)
    await room_with(api, atok, (bob, btok))
    a0 = await sync(api, atok, set_presence="offline")
    c0 = await sync(api, ctok, set_presence="offline")
    await sync(api, btok)  # set_presence omitted: Bob is marked online
    a1 = await sync(api, atok, a0["next_batch"], set_presence="offline")
    assert presence_of(a1)[bob]["presence"] == "online"
    assert bob not in presence_of(await sync(api, ctok, c0["next_batch"]))
    # A second sync within the minute writes nothing and shows nothing new.
    before = await stream_position()
    await sync(api, btok)
    assert await stream_position() == before
    assert presence_of(await sync(api, atok, a1["next_batch"], set_presence="offline")) == {}
    # set_presence=unavailable marks him idle; offline leaves it as it is.
    await sync(api, btok, set_presence="unavailable")
    a2 = await sync(api, atok, a1["next_batch"], set_presence="offline")
    assert presence_of(a2)[bob]["presence"] == "unavailable"
    await sync(api, btok, set_presence="offline")
    got = (await api.call("GET", f"/presence/{bob}/status", token=atok)).json()
    assert got["presence"] == "unavailable"
    # An initial sync has everyone's current presence.
    assert presence_of(await sync(api, atok))[bob]["presence"] == "unavailable"


async def test_inactivity_turns_online_into_unavailable_then_offline(api, settings):
    _alice, atok = await session(api)
    bob, btok = await session(api)
    await room_with(api, atok, (bob, btok))
    await put(api, btok, bob, {"presence": "online"})
    old = int(time.time() * 1000) - 400_000
    await sync_to_async(Presence.objects.filter(user_id=bob).update)(last_active_ts=old)
    got = (await api.call("GET", f"/presence/{bob}/status", token=atok)).json()
    assert got["presence"] == "unavailable" and got["last_active_ago"] >= 400_000
    configure(settings, presence={"offline_after_seconds": 300})
    got = (await api.call("GET", f"/presence/{bob}/status", token=atok)).json()
    assert got["presence"] == "offline"
    # Activity brings him back, visibly (a new stream position).
    a0 = await sync(api, atok, set_presence="offline")
    cache.delete(_cache_key(bob))  # the once-a-minute marker of his last sync
    await sync(api, btok)
    assert presence_of(await sync(api, atok, a0["next_batch"]))[bob]["presence"] == "online"


async def test_bad_presence_requests_store_nothing(api):
    alice, atok = await session(api)
    bob, _btok = await session(api)
    before = await stream_position()
    cases = [
        (atok, bob, {"presence": "online"}, 403, "M_FORBIDDEN"),
        (atok, alice, {}, 400, "M_MISSING_PARAM"),
        (atok, alice, {"presence": "busy"}, 400, "M_INVALID_PARAM"),
        (atok, alice, {"presence": "online", "status_msg": 5}, 400, "M_BAD_JSON"),
        (atok, alice, {"presence": "online", "status_msg": "x" * 2000}, 400, "M_BAD_JSON"),
        (atok, "not-a-user", {"presence": "online"}, 400, "M_INVALID_PARAM"),
    ]
    for tok, user, body, status, errcode in cases:
        r = await put(api, tok, user, body)
        assert (r.status_code, r.json()["errcode"]) == (status, errcode), body
    r = await api.call("GET", "/sync?set_presence=away", token=atok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert await count_rows() == 0 and await stream_position() == before


async def test_presence_disabled_entirely(api, settings):
    configure(settings, presence={"enabled": False})
    alice, atok = await session(api)
    bob, btok = await session(api)
    await room_with(api, atok, (bob, btok))
    r = await put(api, atok, alice, {"presence": "online"})
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = await api.call("GET", f"/presence/{bob}/status", token=atok)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    a0 = await sync(api, atok)
    await sync(api, btok, set_presence="unavailable")
    assert a0["presence"]["events"] == []
    assert (await sync(api, atok, a0["next_batch"]))["presence"]["events"] == []
    assert await count_rows() == 0
