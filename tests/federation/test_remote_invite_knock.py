"""Knocking from the client API (POST /knock/{roomIdOrAlias}) on a room of this server; the
same endpoint on another server's room goes over federation (test_remote_join_live.py)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.accounts.conftest import amake_user

pytestmark = pytest.mark.django_db(transaction=True)

KNOCK_RULES = [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]


async def session(api) -> tuple[str, str]:
    user = await amake_user()
    return user, (await api.login(user))["access_token"]


async def test_knock_shows_in_sync_and_to_the_room_then_retract(api):
    _, owner = await session(api)
    bob, token = await session(api)
    r = await api.call("POST", "/createRoom", {"preset": "private_chat", "name": "Clinic",
                                               "initial_state": KNOCK_RULES}, token=owner)
    room_id = r.json()["room_id"]
    r = await api.call("POST", f"/knock/{quote(room_id)}", {"reason": "on call"}, token=token)
    assert (r.status_code, r.json()) == (200, {"room_id": room_id})
    r = await api.call("GET", "/sync", token=token)
    knock_state = r.json()["rooms"]["knock"][room_id]["knock_state"]["events"]
    assert {"type": "m.room.name", "state_key": ""} in [
        {"type": e["type"], "state_key": e["state_key"]} for e in knock_state]
    mine = [e for e in knock_state if e["type"] == "m.room.member"]
    assert mine[0]["content"] == {"membership": "knock", "reason": "on call"}
    since = r.json()["next_batch"]
    r = await api.call("GET", f"/rooms/{quote(room_id)}/members", token=owner)
    assert {e["state_key"]: e["content"]["membership"] for e in r.json()["chunk"]}[bob] == "knock"
    r = await api.call("POST", f"/rooms/{quote(room_id)}/leave", {}, token=token)
    assert r.status_code == 200
    r = await api.call("GET", f"/sync?since={since}", token=token)
    assert room_id in r.json()["rooms"]["leave"] and room_id not in r.json()["rooms"]["knock"]


async def test_knock_where_join_rules_do_not_allow_it_is_403(api):
    _, owner = await session(api)
    _, token = await session(api)
    r = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=owner)
    room_id = r.json()["room_id"]
    r = await api.call("POST", f"/knock/{quote(room_id)}", {}, token=token)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = await api.call("GET", "/sync", token=token)
    assert r.json()["rooms"]["knock"] == {}
