"""Room endpoints over HTTP: the happy path and each error a client can provoke, with nothing
stored on failure."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async

from homeserver.models import Event
from tests.accounts.conftest import amake_user, configure

pytestmark = pytest.mark.django_db(transaction=True)

count_events = sync_to_async(lambda: Event.objects.count())


async def session(api, localpart: str | None = None) -> tuple[str, str]:
    user = await amake_user(localpart)
    return user, (await api.login(user))["access_token"]


async def new_room(api, token: str, **body) -> str:
    r = await api.call("POST", "/createRoom", body, token=token)
    assert r.status_code == 200, r.json()
    return r.json()["room_id"]


async def test_create_send_read_back(api):
    alice, tok = await session(api)
    room = await new_room(api, tok, name="Ward 1")
    r = await api.call("PUT", f"/rooms/{room}/send/m.room.message/t1",
                       {"msgtype": "m.text", "body": "hello"}, token=tok)
    assert r.status_code == 200
    eid = r.json()["event_id"]
    ev = (await api.call("GET", f"/rooms/{room}/event/{eid}", token=tok)).json()
    assert ev["content"]["body"] == "hello" and ev["sender"] == alice
    name = await api.call("GET", f"/rooms/{room}/state/m.room.name", token=tok)
    assert name.json() == {"name": "Ward 1"}
    joined = (await api.call("GET", "/joined_rooms", token=tok)).json()["joined_rooms"]
    assert joined == [room]
    msgs = (await api.call("GET", f"/rooms/{room}/messages?dir=b&limit=1", token=tok)).json()
    assert [e["event_id"] for e in msgs["chunk"]] == [eid] and "end" in msgs


async def test_send_requires_a_token(api):
    r = await api.call("PUT", "/rooms/!x:localhost:8008/send/m.room.message/t", {"body": "x"})
    assert (r.status_code, r.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    r = await api.call("PUT", "/rooms/!x:localhost:8008/send/m.room.message/t", {"body": "x"},
                       token="not-a-token")
    assert (r.status_code, r.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")


async def test_send_bad_bodies_store_nothing(api):
    _, tok = await session(api)
    room = await new_room(api, tok)
    before = await count_events()
    r = await api.call("PUT", f"/rooms/{room}/send/m.room.message/a", raw=b"{not json", token=tok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_NOT_JSON")
    r = await api.call("PUT", f"/rooms/{room}/send/m.room.message/b", raw=b"[1, 2]", token=tok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON")
    r = await api.call("PUT", f"/rooms/{room}/send/m.room.message/c", {"body": "x" * 70000},
                       token=tok)
    assert (r.status_code, r.json()["errcode"]) == (413, "M_TOO_LARGE")
    assert await count_events() == before


async def test_outsider_gets_forbidden_and_unknown_event_not_found(api):
    _, tok = await session(api)
    _, other = await session(api)
    room = await new_room(api, tok)
    r = await api.call("PUT", f"/rooms/{room}/send/m.room.message/x", {"body": "x"}, token=other)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = await api.call("GET", f"/rooms/{room}/state", token=other)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = await api.call("GET", f"/rooms/{room}/event/$nope", token=tok)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    r = await api.call("GET", f"/rooms/{room}/state/m.room.topic", token=tok)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")


async def test_wrong_method_and_unknown_room_version(api):
    _, tok = await session(api)
    r = await api.call("GET", "/createRoom", token=tok)
    assert (r.status_code, r.json()["errcode"]) == (405, "M_UNRECOGNIZED")
    r = await api.call("POST", "/createRoom", {"room_version": "99"}, token=tok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_UNSUPPORTED_ROOM_VERSION")


async def test_alias_in_use_leaves_no_second_room(api):
    _, tok = await session(api)
    await new_room(api, tok, room_alias_name="ward9")
    rooms_before = await count_events()
    r = await api.call("POST", "/createRoom", {"room_alias_name": "ward9"}, token=tok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_ROOM_IN_USE")
    assert await count_events() == rooms_before


async def test_message_rate_limit(api, settings):
    configure(settings, rate_limits={"enabled": True,
                                     "message": {"per_second": 0.1, "burst": 2}})
    _, tok = await session(api)
    configure(settings, rate_limits={"enabled": False})
    room = await new_room(api, tok)
    configure(settings, rate_limits={"enabled": True,
                                     "message": {"per_second": 0.1, "burst": 2}})
    codes = []
    for i in range(4):
        r = await api.call("PUT", f"/rooms/{room}/send/m.room.message/r{i}", {"body": "x"},
                           token=tok)
        codes.append(r.status_code)
        if r.status_code == 429:
            assert r.json()["errcode"] == "M_LIMIT_EXCEEDED"
            assert r.json()["retry_after_ms"] > 0
    assert codes[:2] == [200, 200] and 429 in codes[2:]


async def test_join_by_alias_invite_kick_ban_unban_forget(api):
    alice, atok = await session(api)
    bob, btok = await session(api)
    room = await new_room(api, atok, preset="public_chat", room_alias_name="lobby")
    from django.conf import settings as s

    alias = f"#lobby:{s.PALISADE.server_name}"
    r = await api.call("POST", f"/join/{quote(alias)}", {}, token=btok)
    assert r.json() == {"room_id": room}
    members = (await api.call("GET", f"/rooms/{room}/joined_members", token=atok)).json()
    assert set(members["joined"]) == {alice, bob}
    assert (await api.call("POST", f"/rooms/{room}/kick", {"user_id": bob},
                           token=atok)).status_code == 200
    assert (await api.call("POST", f"/rooms/{room}/ban", {"user_id": bob, "reason": "spam"},
                           token=atok)).status_code == 200
    r = await api.call("POST", f"/rooms/{room}/join", {}, token=btok)
    assert r.json()["errcode"] == "M_FORBIDDEN"
    r = await api.call("POST", f"/rooms/{room}/kick", {}, token=atok)
    assert r.json()["errcode"] == "M_MISSING_PARAM"
    assert (await api.call("POST", f"/rooms/{room}/unban", {"user_id": bob},
                           token=atok)).status_code == 200
    assert (await api.call("POST", f"/rooms/{room}/forget", {}, token=btok)).status_code == 200
    ms = (await api.call("GET", f"/rooms/{room}/members?membership=leave", token=atok)).json()
    assert [m["state_key"] for m in ms["chunk"]] == [bob]
