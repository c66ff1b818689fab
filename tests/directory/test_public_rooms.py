"""The published room directory over HTTP: publishing, listing with filters and pagination, the
compliance switches, and every refusal leaving nothing behind."""

from __future__ import annotations

import pytest

from audit.actions import AuditAction
from tests.accounts.conftest import aaudit_head, aaudit_since, configure
from tests.directory.helpers import (
    assert_error,
    audited,
    hs,
    join,
    new_room,
    put_state,
    q,
    session,
    snapshot,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_visibility_get_and_set(api):
    alice, tok = await session(api)
    room = await new_room(api, tok, visibility="public")
    # Spec: GET needs no token.
    r = await api.call("GET", f"/directory/list/room/{q(room)}")
    assert r.json() == {"visibility": "public"}
    head = await aaudit_head()
    r = await api.call("PUT", f"/directory/list/room/{q(room)}", {"visibility": "private"},
                       token=tok)
    assert (r.status_code, r.json()) == (200, {})
    assert (await api.call("GET", f"/directory/list/room/{q(room)}")).json() == {
        "visibility": "private"}
    # Spec: visibility defaults to public; setting the current value is a no-op.
    assert (await api.call("PUT", f"/directory/list/room/{q(room)}", {}, token=tok)
            ).status_code == 200
    assert (await api.call("PUT", f"/directory/list/room/{q(room)}", {"visibility": "public"},
                           token=tok)).status_code == 200
    assert audited(await aaudit_since(head)) == [
        (AuditAction.ROOM_DIRECTORY_VISIBILITY_CHANGED, alice, room, {"visibility": "private"}),
        (AuditAction.ROOM_DIRECTORY_VISIBILITY_CHANGED, alice, room, {"visibility": "public"}),
    ]


async def test_visibility_refusals_store_nothing(api):
    _, tok = await session(api)
    _, b_tok = await session(api)
    room = await new_room(api, tok, preset="public_chat")
    await join(api, b_tok, room)
    unknown = f"!unknown:{hs()}"
    assert_error(await api.call("GET", f"/directory/list/room/{q(unknown)}"), 404, "M_NOT_FOUND")
    assert_error(await api.call("GET", f"/directory/list/room/{q('nope')}"), 400,
                 "M_INVALID_PARAM")
    before = await snapshot()
    path = f"/directory/list/room/{q(room)}"
    assert_error(await api.call("PUT", path, {"visibility": "secret"}, token=tok), 400,
                 "M_INVALID_PARAM")
    assert_error(await api.call("PUT", path, {"visibility": "public"}), 401, "M_MISSING_TOKEN")
    # Bob is a member with power 0: not a room admin.
    assert_error(await api.call("PUT", path, {"visibility": "public"}, token=b_tok), 403,
                 "M_FORBIDDEN")
    assert_error(await api.call("PUT", f"/directory/list/room/{q(unknown)}",
                                {"visibility": "public"}, token=tok), 404, "M_NOT_FOUND")
    assert_error(await api.call("PUT", path, raw=b"[]", token=tok), 400, "M_BAD_JSON")
    assert await snapshot() == before
    assert (await api.call("GET", path)).json() == {"visibility": "private"}


async def test_server_admin_may_publish_any_room(api):
    _, tok = await session(api)
    _, admin_tok = await session(api, admin=True)
    room = await new_room(api, tok)
    r = await api.call("PUT", f"/directory/list/room/{q(room)}", {"visibility": "public"},
                       token=admin_tok)
    assert r.status_code == 200
    assert (await api.call("GET", f"/directory/list/room/{q(room)}")).json()["visibility"] == \
        "public"


async def make_directory(api):
    """Three published rooms of 3, 2 and 1 members, a space, and an unpublished room."""
    users = [await session(api) for _ in range(3)]
    tok = users[0][1]
    big = await new_room(api, tok, visibility="public", name="Cardiology Ward",
                         topic="Heart patients", room_alias_name="cardio")
    await put_state(api, tok, big, "m.room.avatar", {"url": "mxc://example.org/heart"})
    await put_state(api, tok, big, "m.room.guest_access", {"guest_access": "can_join"})
    await put_state(api, tok, big, "m.room.history_visibility",
                    {"history_visibility": "world_readable"})
    for _, t in users[1:]:
        await join(api, t, big)
    mid = await new_room(api, tok, visibility="public", name="Night shift",
                         topic="Handover notes for the NIGHT")
    await join(api, users[1][1], mid)
    space = await new_room(api, tok, visibility="public", name="Hospital",
                           creation_content={"type": "m.space"})
    hidden = await new_room(api, tok, name="Cardiology secrets")
    return tok, big, mid, space, hidden


async def test_listing_entries_order_and_filters(api):
    tok, big, mid, space, hidden = await make_directory(api)
    r = await api.call("GET", "/publicRooms", token=tok)
    assert r.status_code == 200
    body = r.json()
    assert [e["room_id"] for e in body["chunk"]] == [big, mid, space]  # largest first
    assert body["total_room_count_estimate"] == 3
    assert "next_batch" not in body and "prev_batch" not in body
    first = body["chunk"][0]
    assert first == {
        "room_id": big,
        "num_joined_members": 3,
        "name": "Cardiology Ward",
        "topic": "Heart patients",
        "avatar_url": "mxc://example.org/heart",
        "canonical_alias": f"#cardio:{hs()}",
        "world_readable": True,
        "guest_can_join": True,
        "join_rule": "public",
    }
    assert body["chunk"][2]["room_type"] == "m.space"
    assert "room_type" not in body["chunk"][1]

    async def search(**body):
        r = await api.call("POST", "/publicRooms", body, token=tok)
        assert r.status_code == 200, r.json()
        return [e["room_id"] for e in r.json()["chunk"]]

    # generic_search_term: name, topic and alias, case-insensitively; unpublished rooms never.
    assert await search(filter={"generic_search_term": "cardiology"}) == [big]
    assert await search(filter={"generic_search_term": "night"}) == [mid]
    assert await search(filter={"generic_search_term": "CARDIO:"}) == [big]
    assert await search(filter={"generic_search_term": "nothing like it"}) == []
    assert await search(filter={"room_types": ["m.space"]}) == [space]
    assert await search(filter={"room_types": [None]}) == [big, mid]
    assert await search(filter={"room_types": [None, "m.space"]}) == [big, mid, space]
    assert await search(filter={}, include_all_networks=False) == [big, mid, space]
    assert await search(third_party_instance_id="irc") == []
    assert hidden not in await search()


async def test_pagination_both_ways(api):
    tok, big, mid, space, _ = await make_directory(api)
    r = (await api.call("GET", "/publicRooms?limit=1", token=tok)).json()
    assert [e["room_id"] for e in r["chunk"]] == [big] and "prev_batch" not in r
    r2 = (await api.call("GET", f"/publicRooms?limit=1&since={r['next_batch']}", token=tok)).json()
    assert [e["room_id"] for e in r2["chunk"]] == [mid]
    r3 = (await api.call("POST", "/publicRooms", {"limit": 1, "since": r2["next_batch"]},
                         token=tok)).json()
    assert [e["room_id"] for e in r3["chunk"]] == [space] and "next_batch" not in r3
    back = (await api.call("GET", f"/publicRooms?limit=1&since={r3['prev_batch']}",
                           token=tok)).json()
    assert [e["room_id"] for e in back["chunk"]] == [mid]
    assert r3["total_room_count_estimate"] == 3
    # The server's own name as `server` is the local directory.
    own = await api.call("GET", f"/publicRooms?server={q(hs())}", token=tok)
    assert len(own.json()["chunk"]) == 3


async def test_listing_bad_inputs(api):
    _, tok = await session(api)
    cases = [
        ("GET", "/publicRooms?since=garbage", None, 400, "M_INVALID_PARAM"),
        ("GET", "/publicRooms?limit=ten", None, 400, "M_INVALID_PARAM"),
        ("GET", "/publicRooms?limit=-1", None, 400, "M_INVALID_PARAM"),
        ("GET", "/publicRooms?server=elsewhere.example", None, 404, "M_NOT_FOUND"),
        ("GET", "/publicRooms?server=bad%20name", None, 400, "M_INVALID_PARAM"),
        ("POST", "/publicRooms", {"limit": "ten"}, 400, "M_BAD_JSON"),
        ("POST", "/publicRooms", {"limit": True}, 400, "M_BAD_JSON"),
        ("POST", "/publicRooms", {"since": 5}, 400, "M_BAD_JSON"),
        ("POST", "/publicRooms", {"filter": []}, 400, "M_BAD_JSON"),
        ("POST", "/publicRooms", {"filter": {"generic_search_term": 1}}, 400, "M_BAD_JSON"),
        ("POST", "/publicRooms", {"filter": {"room_types": "m.space"}}, 400, "M_BAD_JSON"),
        ("POST", "/publicRooms", {"filter": {"room_types": [1]}}, 400, "M_BAD_JSON"),
        ("POST", "/publicRooms", {"since": "o1x"}, 400, "M_INVALID_PARAM"),
        ("PUT", "/publicRooms", {}, 405, "M_UNRECOGNIZED"),
    ]
    for method, path, body, status, errcode in cases:
        assert_error(await api.call(method, path, body, token=tok), status, errcode)
    assert_error(await api.call("POST", "/publicRooms", raw=b"{x", token=tok), 400, "M_NOT_JSON")


async def test_auth_switches(api, settings):
    _, tok = await session(api)
    await new_room(api, tok, visibility="public", name="Lobby")
    # Default: this server wants a token even for GET; POST always needs one (spec).
    assert_error(await api.call("GET", "/publicRooms"), 401, "M_MISSING_TOKEN")
    assert_error(await api.call("POST", "/publicRooms", {}), 401, "M_MISSING_TOKEN")
    configure(settings, directory={"public_rooms_require_auth": False})
    r = await api.call("GET", "/publicRooms")
    assert [e["name"] for e in r.json()["chunk"]] == ["Lobby"]
    assert_error(await api.call("GET", "/publicRooms", token="bogus"), 401, "M_UNKNOWN_TOKEN")
    assert_error(await api.call("POST", "/publicRooms", {}), 401, "M_MISSING_TOKEN")


async def test_directory_switched_off_by_profile(api, settings):
    """ePA: /publicRooms answers 403 and nothing can be published; unpublishing still works."""
    _, tok = await session(api)
    room = await new_room(api, tok, visibility="public")
    configure(settings, directory={"public_rooms_enabled": False})
    assert_error(await api.call("GET", "/publicRooms", token=tok), 403, "M_FORBIDDEN")
    assert_error(await api.call("POST", "/publicRooms", {}, token=tok), 403, "M_FORBIDDEN")
    private = await new_room(api, tok)
    before = await snapshot()
    r = await api.call("PUT", f"/directory/list/room/{q(private)}", {"visibility": "public"},
                       token=tok)
    assert_error(r, 403, "M_FORBIDDEN")
    assert await snapshot() == before
    r = await api.call("PUT", f"/directory/list/room/{q(room)}", {"visibility": "private"},
                       token=tok)
    assert r.status_code == 200


async def test_rooms_without_members_are_not_listed(api):
    _, tok = await session(api)
    room = await new_room(api, tok, visibility="public", name="Abandoned")
    assert (await api.call("POST", f"/rooms/{q(room)}/leave", {}, token=tok)).status_code == 200
    r = await api.call("GET", "/publicRooms", token=tok)
    assert r.json()["chunk"] == []
