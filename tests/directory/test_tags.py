"""Room tags over HTTP, stored as `m.tag` room account data and delivered by /sync."""

from __future__ import annotations

import pytest

from tests.directory.helpers import assert_error, new_room, q, session, snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def tags_path(user: str, room: str, tag: str | None = None) -> str:
    base = f"/user/{q(user)}/rooms/{q(room)}/tags"
    return base if tag is None else f"{base}/{q(tag)}"


async def room_tags_in_sync(api, token: str, room: str, since: str | None = None):
    path = "/sync?timeout=0" + (f"&since={since}" if since else "")
    body = (await api.call("GET", path, token=token)).json()
    room_data = body["rooms"]["join"].get(room, {}).get("account_data", {}).get("events", [])
    return body["next_batch"], [e for e in room_data if e["type"] == "m.tag"]


async def test_put_get_delete_and_sync(api):
    alice, tok = await session(api)
    room = await new_room(api, tok)
    assert (await api.call("GET", tags_path(alice, room), token=tok)).json() == {"tags": {}}
    since, events = await room_tags_in_sync(api, tok, room)
    assert events == []

    for tag, body in (("m.favourite", {"order": 0.1}), ("u.Work", {"order": 1}),
                      ("u.Customers", {}), ("u.a/b", {"order": 0})):
        r = await api.call("PUT", tags_path(alice, room, tag), body, token=tok)
        assert (r.status_code, r.json()) == (200, {}), tag
    expected = {"m.favourite": {"order": 0.1}, "u.Work": {"order": 1}, "u.Customers": {},
                "u.a/b": {"order": 0}}
    assert (await api.call("GET", tags_path(alice, room), token=tok)).json() == {"tags": expected}
    since, events = await room_tags_in_sync(api, tok, room, since)
    assert events == [{"type": "m.tag", "content": {"tags": expected}}]

    # Re-tagging replaces the tag's data; deleting removes it; deleting again is harmless.
    await api.call("PUT", tags_path(alice, room, "u.Work"), {"order": 0.5}, token=tok)
    r = await api.call("DELETE", tags_path(alice, room, "m.favourite"), token=tok)
    assert (r.status_code, r.json()) == (200, {})
    r = await api.call("DELETE", tags_path(alice, room, "m.favourite"), token=tok)
    assert r.status_code == 200
    tags = (await api.call("GET", tags_path(alice, room), token=tok)).json()["tags"]
    assert tags == {"u.Work": {"order": 0.5}, "u.Customers": {}, "u.a/b": {"order": 0}}
    _, events = await room_tags_in_sync(api, tok, room, since)
    assert events == [{"type": "m.tag", "content": {"tags": tags}}]
    # The same data through the generic room account data API.
    r = await api.call("GET", f"/user/{q(alice)}/rooms/{q(room)}/account_data/m.tag", token=tok)
    assert r.json() == {"tags": tags}


async def test_bad_requests_store_nothing(api):
    alice, tok = await session(api)
    bob, b_tok = await session(api)
    room = await new_room(api, tok)
    before = await snapshot()
    cases = [
        ("PUT", tags_path(bob, room, "u.x"), {}, tok, 403, "M_FORBIDDEN"),
        ("DELETE", tags_path(bob, room, "u.x"), None, tok, 403, "M_FORBIDDEN"),
        ("GET", tags_path(alice, room), None, b_tok, 403, "M_FORBIDDEN"),
        ("PUT", tags_path("not-a-user", room, "u.x"), {}, tok, 400, "M_INVALID_PARAM"),
        ("PUT", tags_path(alice, "not-a-room", "u.x"), {}, tok, 400, "M_INVALID_PARAM"),
        ("GET", tags_path(alice, "not-a-room"), None, tok, 400, "M_INVALID_PARAM"),
        ("PUT", tags_path(alice, room, "u.x"), {"order": "first"}, tok, 400, "M_BAD_JSON"),
        ("PUT", tags_path(alice, room, "u.x"), {"order": True}, tok, 400, "M_BAD_JSON"),
        ("PUT", tags_path(alice, room, "u.x"), {"order": 1.5}, tok, 400, "M_INVALID_PARAM"),
        ("PUT", tags_path(alice, room, "u.x"), {"order": -0.1}, tok, 400, "M_INVALID_PARAM"),
        ("PUT", tags_path(alice, room, "u." + "x" * 254), {}, tok, 400, "M_INVALID_PARAM"),
        ("PUT", tags_path(alice, room, "u.x"), {}, None, 401, "M_MISSING_TOKEN"),
        ("POST", tags_path(alice, room, "u.x"), {}, tok, 405, "M_UNRECOGNIZED"),
    ]
    for method, path, body, token, status, errcode in cases:
        assert_error(await api.call(method, path, body, token=token), status, errcode)
    assert_error(await api.call("PUT", tags_path(alice, room, "u.x"), raw=b"x", token=tok),
                 400, "M_NOT_JSON")
    assert_error(await api.call("PUT", tags_path(alice, room, "u.x"), raw=b"[0.5]", token=tok),
                 400, "M_BAD_JSON")
    assert await snapshot() == before
