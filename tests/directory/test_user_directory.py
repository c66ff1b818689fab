"""User directory search over HTTP: who can be found (shared rooms, public rooms, the ePA
switch), matching on user ID and display name, ordering, `limited`, and bad requests."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from homeserver.models import Account
from tests.accounts.conftest import configure
from tests.directory.helpers import assert_error, join, new_room, put_state, q, session

pytestmark = pytest.mark.django_db(transaction=True)


async def set_name(api, user: str, token: str, name: str) -> None:
    r = await api.call("PUT", f"/profile/{q(user)}/displayname", {"displayname": name},
                       token=token)
    assert r.status_code == 200, r.json()


async def search(api, token: str, term: str, **extra) -> dict:
    r = await api.call("POST", "/user_directory/search", {"search_term": term, **extra},
                       token=token)
    assert r.status_code == 200, r.json()
    return r.json()


def ids(result: dict) -> list[str]:
    return [u["user_id"] for u in result["results"]]


async def people(api):
    """Alice shares a private room with Bob; Carol sits in a public room; Dave in a private
    room of his own; Erin in a world_readable invite-only room."""
    alice, a_tok = await session(api, "alice-searcher")
    bob, b_tok = await session(api, "bob-shared")
    carol, c_tok = await session(api, "carol-public")
    dave, d_tok = await session(api, "dave-private")
    erin, e_tok = await session(api, "erin-readable")
    await set_name(api, bob, b_tok, "Dr. Bob Müller")
    await set_name(api, carol, c_tok, "Nurse Carol Miller")
    await set_name(api, dave, d_tok, "Dave Miller")
    await set_name(api, erin, e_tok, "Erin Miller")
    shared = await new_room(api, a_tok, invite=[bob])
    await join(api, b_tok, shared)
    await new_room(api, c_tok, preset="public_chat")
    await new_room(api, d_tok)
    readable = await new_room(api, e_tok)
    await put_state(api, e_tok, readable, "m.room.history_visibility",
                    {"history_visibility": "world_readable"})
    return {"alice": (alice, a_tok), "bob": bob, "carol": carol, "dave": dave, "erin": erin}


async def test_finds_shared_and_public_members_only(api):
    p = await people(api)
    _, tok = p["alice"]
    result = await search(api, tok, "miller")
    assert set(ids(result)) == {p["carol"], p["erin"]}  # Dave shares nothing and is private
    assert result["limited"] is False
    # Display names match case-insensitively, user IDs by substring; profile info comes along.
    bob = await search(api, tok, "DR. BOB")
    assert bob["results"] == [{"user_id": p["bob"], "display_name": "Dr. Bob Müller"}]
    assert ids(await search(api, tok, "bob-sha")) == [p["bob"]]
    assert ids(await search(api, tok, "dave")) == []
    assert ids(await search(api, tok, "   ")) == []


async def test_epa_switch_limits_hits_to_shared_rooms(api, settings):
    p = await people(api)
    configure(settings, directory={"search_all_public_members": False})
    _, tok = p["alice"]
    assert ids(await search(api, tok, "miller")) == []
    assert ids(await search(api, tok, "bob")) == [p["bob"]]


async def test_visibility_follows_room_state(api):
    p = await people(api)
    _, tok = p["alice"]
    dave_tok = (await api.login(p["dave"]))["access_token"]
    room = (await api.call("GET", "/joined_rooms", token=dave_tok)).json()["joined_rooms"][0]
    await put_state(api, dave_tok, room, "m.room.join_rules", {"join_rule": "public"})
    assert p["dave"] in ids(await search(api, tok, "miller"))
    await put_state(api, dave_tok, room, "m.room.join_rules", {"join_rule": "invite"})
    assert p["dave"] not in ids(await search(api, tok, "miller"))
    # Leaving the shared room makes Bob unfindable for Alice.
    bob_tok = (await api.login(p["bob"]))["access_token"]
    shared = (await api.call("GET", "/joined_rooms", token=bob_tok)).json()["joined_rooms"][0]
    await api.call("POST", f"/rooms/{q(shared)}/leave", {}, token=bob_tok)
    assert ids(await search(api, tok, "bob")) == []


async def test_deactivated_users_are_not_found(api):
    p = await people(api)
    _, tok = p["alice"]
    await sync_to_async(Account.objects.filter(user_id=p["carol"]).update)(deactivated=True)
    assert ids(await search(api, tok, "miller")) == [p["erin"]]


async def test_limit_ranking_and_limited(api):
    _, tok = await session(api, "ranker")
    room = await new_room(api, tok, preset="public_chat")
    names = ["Anna Pflege", "Pflegedienst", "Zentrale Pflege", "Pfl"]
    users = []
    for name in names:
        user, t = await session(api)
        await set_name(api, user, t, name)
        await join(api, t, room)
        users.append(user)
    result = await search(api, tok, "pfl", limit=2)
    assert result["limited"] is True and len(result["results"]) == 2
    # Exact display name first, then word prefixes.
    assert result["results"][0]["user_id"] == users[3]
    full = await search(api, tok, "pfl", limit=10)
    assert full["limited"] is False
    assert set(ids(full)) == set(users)


async def test_bad_requests(api):
    _, tok = await session(api)
    cases = [
        ({}, 400, "M_MISSING_PARAM"),
        ({"search_term": 5}, 400, "M_BAD_JSON"),
        ({"search_term": "x", "limit": "5"}, 400, "M_BAD_JSON"),
        ({"search_term": "x", "limit": -1}, 400, "M_BAD_JSON"),
    ]
    for body, status, errcode in cases:
        assert_error(await api.call("POST", "/user_directory/search", body, token=tok),
                     status, errcode)
    assert_error(await api.call("POST", "/user_directory/search", raw=b"nope", token=tok),
                 400, "M_NOT_JSON")
    assert_error(await api.call("POST", "/user_directory/search", {"search_term": "x"}),
                 401, "M_MISSING_TOKEN")
    assert_error(await api.call("GET", "/user_directory/search", token=tok), 405,
                 "M_UNRECOGNIZED")
