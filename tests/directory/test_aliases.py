"""Room aliases over HTTP: create, resolve, delete, list, and the canonical alias check on send.
Every refused request answers with the spec's status and errcode and stores nothing."""

from __future__ import annotations

import pytest

from audit.actions import AuditAction
from tests.accounts.conftest import aaudit_head, aaudit_since
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
    state,
)

pytestmark = pytest.mark.django_db(transaction=True)


def alias(name: str) -> str:
    return f"#{name}:{hs()}"


async def test_create_resolve_list_delete(api):
    alice, tok = await session(api)
    room = await new_room(api, tok)
    head = await aaudit_head()
    r = await api.call("PUT", f"/directory/room/{q(alias('ward-5'))}", {"room_id": room}, token=tok)
    assert (r.status_code, r.json()) == (200, {})

    # Spec: resolving needs no access token; servers lists this server.
    r = await api.call("GET", f"/directory/room/{q(alias('ward-5'))}")
    assert r.status_code == 200
    assert r.json() == {"room_id": room, "servers": [hs()]}

    r = await api.call("GET", f"/rooms/{q(room)}/aliases", token=tok)
    assert r.json() == {"aliases": [alias("ward-5")]}

    r = await api.call("DELETE", f"/directory/room/{q(alias('ward-5'))}", token=tok)
    assert (r.status_code, r.json()) == (200, {})
    assert_error(await api.call("GET", f"/directory/room/{q(alias('ward-5'))}"), 404, "M_NOT_FOUND")
    assert (await api.call("GET", f"/rooms/{q(room)}/aliases", token=tok)).json() == {"aliases": []}

    records = await aaudit_since(head)
    assert audited(records) == [
        (AuditAction.ROOM_ALIAS_CREATED, alice, room, {"alias": alias("ward-5")}),
        (AuditAction.ROOM_ALIAS_DELETED, alice, room, {"alias": alias("ward-5"), "as": "creator"}),
    ]


async def test_alias_with_slash_and_unicode(api):
    _, tok = await session(api)
    room = await new_room(api, tok)
    name = alias("station/süd")
    r = await api.call("PUT", f"/directory/room/{q(name)}", {"room_id": room}, token=tok)
    assert r.status_code == 200, r.json()
    assert (await api.call("GET", f"/directory/room/{q(name)}")).json()["room_id"] == room


async def test_create_refusals_store_nothing(api):
    _, tok = await session(api)
    _, other_tok = await session(api)
    room = await new_room(api, tok)
    r = await api.call("PUT", f"/directory/room/{q(alias('taken'))}", {"room_id": room}, token=tok)
    assert r.status_code == 200
    other_room = await new_room(api, other_tok)
    before = await snapshot()
    cases = [
        # (alias, body, token, status, errcode)
        ("no-sigil:" + hs(), {"room_id": room}, tok, 400, "M_INVALID_PARAM"),
        ("#no-server", {"room_id": room}, tok, 400, "M_INVALID_PARAM"),
        ("#remote:elsewhere.example", {"room_id": room}, tok, 400, "M_INVALID_PARAM"),
        (alias("a"), {}, tok, 400, "M_MISSING_PARAM"),
        (alias("a"), {"room_id": "not-a-room"}, tok, 400, "M_INVALID_PARAM"),
        (alias("a"), {"room_id": 7}, tok, 400, "M_INVALID_PARAM"),
        (alias("a"), {"room_id": f"!unknown:{hs()}"}, tok, 404, "M_NOT_FOUND"),
        (alias("a"), {"room_id": other_room}, tok, 403, "M_FORBIDDEN"),  # not a member
        (alias("taken"), {"room_id": room}, tok, 409, "M_UNKNOWN"),
        (alias("taken"), {"room_id": other_room}, other_tok, 409, "M_UNKNOWN"),
        (alias("a"), {"room_id": room}, None, 401, "M_MISSING_TOKEN"),
    ]
    for name, body, token, status, errcode in cases:
        r = await api.call("PUT", f"/directory/room/{q(name)}", body, token=token)
        assert_error(r, status, errcode)
    r = await api.call("PUT", f"/directory/room/{q(alias('a'))}", raw=b"{nope", token=tok)
    assert_error(r, 400, "M_NOT_JSON")
    assert await snapshot() == before
    # The taken alias still points where it did.
    assert (await api.call("GET", f"/directory/room/{q(alias('taken'))}")).json()["room_id"] == room


async def test_resolve_errors(api):
    assert_error(await api.call("GET", f"/directory/room/{q('nohash')}"), 400, "M_INVALID_PARAM")
    assert_error(await api.call("GET", f"/directory/room/{q(alias('nobody'))}"), 404, "M_NOT_FOUND")
    # Other servers' aliases need federation: not found until then.
    r = await api.call("GET", f"/directory/room/{q('#x:elsewhere.example')}")
    assert_error(r, 404, "M_NOT_FOUND")
    r = await api.call("POST", f"/directory/room/{q(alias('x'))}", {})
    assert_error(r, 405, "M_UNRECOGNIZED")


async def test_who_may_delete(api):
    _, a_tok = await session(api)
    _, b_tok = await session(api)
    _, admin_tok = await session(api, admin=True)
    room = await new_room(api, a_tok, preset="public_chat")
    await join(api, b_tok, room)
    for name in ("by-alice", "by-alice-2", "by-bob"):
        token = b_tok if name == "by-bob" else a_tok
        r = await api.call("PUT", f"/directory/room/{q(alias(name))}", {"room_id": room},
                           token=token)
        assert r.status_code == 200, r.json()
    before = await snapshot()
    # Bob (power 0) may not delete Alice's alias.
    r = await api.call("DELETE", f"/directory/room/{q(alias('by-alice'))}", token=b_tok)
    assert_error(r, 403, "M_FORBIDDEN")
    assert_error(await api.call("DELETE", f"/directory/room/{q(alias('never'))}", token=b_tok),
                 404, "M_NOT_FOUND")
    assert_error(await api.call("DELETE", f"/directory/room/{q('bad')}", token=b_tok),
                 400, "M_INVALID_PARAM")
    assert_error(await api.call("DELETE", f"/directory/room/{q(alias('by-alice'))}"),
                 401, "M_MISSING_TOKEN")
    assert await snapshot() == before
    # His own alias he may; Alice (room admin) may delete his; a server admin may delete any.
    assert (await api.call("DELETE", f"/directory/room/{q(alias('by-bob'))}", token=b_tok)
            ).status_code == 200
    r = await api.call("PUT", f"/directory/room/{q(alias('by-bob'))}", {"room_id": room},
                       token=b_tok)
    assert r.status_code == 200
    assert (await api.call("DELETE", f"/directory/room/{q(alias('by-bob'))}", token=a_tok)
            ).status_code == 200
    assert (await api.call("DELETE", f"/directory/room/{q(alias('by-alice'))}", token=admin_tok)
            ).status_code == 200
    listed = (await api.call("GET", f"/rooms/{q(room)}/aliases", token=a_tok)).json()
    assert listed == {"aliases": [alias("by-alice-2")]}


async def test_deleting_an_advertised_alias_updates_canonical_alias(api):
    _, tok = await session(api)
    room = await new_room(api, tok, room_alias_name="main")
    r = await api.call("PUT", f"/directory/room/{q(alias('alt'))}", {"room_id": room}, token=tok)
    assert r.status_code == 200
    content = {"alias": alias("main"), "alt_aliases": [alias("alt")]}
    assert (await put_state(api, tok, room, "m.room.canonical_alias", content)).status_code == 200
    assert (await api.call("DELETE", f"/directory/room/{q(alias('alt'))}", token=tok)
            ).status_code == 200
    r = await state(api, tok, room, "m.room.canonical_alias")
    assert r.json() == {"alias": alias("main"), "alt_aliases": []}


async def test_listing_aliases_needs_membership_or_world_readable(api):
    _, tok = await session(api)
    _, other = await session(api)
    room = await new_room(api, tok, room_alias_name="listed")
    assert_error(await api.call("GET", f"/rooms/{q(room)}/aliases", token=other), 403,
                 "M_FORBIDDEN")
    assert_error(await api.call("GET", f"/rooms/{q(room)}/aliases"), 401, "M_MISSING_TOKEN")
    assert_error(await api.call("GET", f"/rooms/{q('not-a-room')}/aliases", token=tok), 400,
                 "M_INVALID_PARAM")
    await put_state(api, tok, room, "m.room.history_visibility",
                    {"history_visibility": "world_readable"})
    r = await api.call("GET", f"/rooms/{q(room)}/aliases", token=other)
    assert r.json() == {"aliases": [alias("listed")]}


async def test_canonical_alias_must_point_at_the_room(api):
    _, tok = await session(api)
    _, b_tok = await session(api)
    room = await new_room(api, tok, room_alias_name="here", preset="public_chat")
    await new_room(api, tok, room_alias_name="there")
    await join(api, b_tok, room)
    before = await snapshot()
    cases = [
        ({"alias": alias("nowhere")}, 400, "M_BAD_ALIAS"),
        ({"alias": alias("there")}, 400, "M_BAD_ALIAS"),
        ({"alias": alias("here"), "alt_aliases": [alias("there")]}, 400, "M_BAD_ALIAS"),
        ({"alias": "#x:elsewhere.example"}, 400, "M_BAD_ALIAS"),
        ({"alias": "not an alias"}, 400, "M_INVALID_PARAM"),
        ({"alias": 5}, 400, "M_INVALID_PARAM"),
        ({"alt_aliases": "#here"}, 400, "M_INVALID_PARAM"),
        ({"alt_aliases": ["#bad"]}, 400, "M_INVALID_PARAM"),
    ]
    for content, status, errcode in cases:
        assert_error(await put_state(api, tok, room, "m.room.canonical_alias", content),
                     status, errcode)
    # Permission comes first: Bob (power 0) is refused whatever the aliases say.
    r = await put_state(api, b_tok, room, "m.room.canonical_alias", {"alias": alias("nowhere")})
    assert_error(r, 403, "M_FORBIDDEN")
    assert await snapshot() == before
    assert (await state(api, tok, room, "m.room.canonical_alias")).json() == {"alias": alias("here")}
    # Clearing is fine; so is keeping an alias that stopped pointing here after it was
    # advertised (a server admin outside the room deleted it, so nothing updated the event).
    assert (await put_state(api, tok, room, "m.room.canonical_alias", {})).status_code == 200
    _, admin_tok = await session(api, admin=True)
    await api.call("PUT", f"/directory/room/{q(alias('alt'))}", {"room_id": room}, token=tok)
    both = {"alias": alias("here"), "alt_aliases": [alias("alt")]}
    assert (await put_state(api, tok, room, "m.room.canonical_alias", both)).status_code == 200
    r = await api.call("DELETE", f"/directory/room/{q(alias('alt'))}", token=admin_tok)
    assert r.status_code == 200
    assert (await state(api, tok, room, "m.room.canonical_alias")).json() == both
    r = await put_state(api, tok, room, "m.room.canonical_alias", {**both, "alias": None})
    assert r.status_code == 200, r.json()


async def test_alias_resolves_for_join(api):
    _, tok = await session(api)
    _, b_tok = await session(api)
    room = await new_room(api, tok, preset="public_chat")
    await api.call("PUT", f"/directory/room/{q(alias('lobby'))}", {"room_id": room}, token=tok)
    r = await api.call("POST", f"/join/{q(alias('lobby'))}", {}, token=b_tok)
    assert r.json() == {"room_id": room}
