"""Directory and conveniences through the real server process with a real Matrix client library
(matrix-nio): aliases and the canonical alias, the published directory, a room upgrade that
people follow, tags arriving by /sync, the user directory, TURN, timestamps and OpenID.

nio has no calls for /upgrade, tags, the user directory, TURN or timestamp_to_event; those go
through nio's own authenticated `send`, and nio parses what /sync then delivers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from urllib.parse import quote

import httpx
import nio
import pytest
from nio.responses import PublicRoomsResponse

from tests.live_server import start_server

pytestmark = pytest.mark.live
PASSWORD = "a long and proper password"
TURN_SECRET = "live-turn-secret"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(
        tmp_path_factory.mktemp("live-directory"),
        turn={"uris": ["turn:turn.example.org:3478?transport=udp"],
              "shared_secret": TURN_SECRET},
    )
    yield s
    s.stop()


async def login(server, localpart: str) -> nio.AsyncClient:
    await asyncio.to_thread(server.register_user, localpart, PASSWORD)
    client = nio.AsyncClient(server.base_url, localpart)
    resp = await client.login(PASSWORD, device_name=f"{localpart}'s laptop")
    assert isinstance(resp, nio.LoginResponse), resp
    return client


async def raw(client: nio.AsyncClient, method: str, path: str, body=None) -> tuple[int, dict]:
    """An authenticated request through nio's own HTTP session."""
    resp = await client.send(
        method, path, json.dumps(body) if body is not None else None,
        headers={"Authorization": f"Bearer {client.access_token}",
                 "Content-Type": "application/json"},
    )
    return resp.status, await resp.json()


def enc(text: str) -> str:
    return quote(text, safe="")


async def test_aliases_canonical_alias_and_published_directory(server):
    alice = await login(server, "dir-alice")
    try:
        hs = server.server_name
        created = await alice.room_create(visibility=nio.RoomVisibility.public,
                                          name="Radiology", topic="Scans and reports",
                                          alias="radiology")
        assert isinstance(created, nio.RoomCreateResponse), created
        room = created.room_id
        put = await alice.room_put_alias(f"#xray:{hs}", room)
        assert isinstance(put, nio.RoomPutAliasResponse), put
        again = await alice.room_put_alias(f"#xray:{hs}", room)
        # nio reports every answer to this call as success; the HTTP status tells the truth.
        assert again.transport_response.status == 409

        resolved = await alice.room_resolve_alias(f"#xray:{hs}")
        assert isinstance(resolved, nio.RoomResolveAliasResponse), resolved
        assert (resolved.room_id, resolved.servers) == (room, [hs])

        ok = await alice.room_put_state(room, "m.room.canonical_alias",
                                        {"alias": f"#radiology:{hs}",
                                         "alt_aliases": [f"#xray:{hs}"]})
        assert isinstance(ok, nio.RoomPutStateResponse), ok
        bad = await alice.room_put_state(room, "m.room.canonical_alias",
                                         {"alias": f"#nowhere:{hs}"})
        assert isinstance(bad, nio.RoomPutStateError) and bad.status_code == "M_BAD_ALIAS"
        current = await alice.room_get_state_event(room, "m.room.canonical_alias")
        assert current.content["alt_aliases"] == [f"#xray:{hs}"]

        vis = await alice.room_get_visibility(room)
        assert isinstance(vis, nio.RoomGetVisibilityResponse) and vis.visibility == "public"
        listed = await alice.list_public_rooms(filter_generic_search_term="scans")
        assert isinstance(listed, PublicRoomsResponse), listed
        [entry] = listed.public_rooms
        assert (entry.room_id, entry.name, entry.canonical_alias, entry.num_joined_members) == \
            (room, "Radiology", f"#radiology:{hs}", 1)
        assert (await alice.list_public_rooms(filter_generic_search_term="cardio")
                ).public_rooms == []

        deleted = await alice.room_delete_alias(f"#xray:{hs}")
        assert isinstance(deleted, nio.RoomDeleteAliasResponse), deleted
        gone = await alice.room_resolve_alias(f"#xray:{hs}")
        assert isinstance(gone, nio.responses.RoomResolveAliasError) and gone.status_code == "M_NOT_FOUND"
        current = await alice.room_get_state_event(room, "m.room.canonical_alias")
        assert current.content == {"alias": f"#radiology:{hs}", "alt_aliases": []}
    finally:
        await alice.close()


async def test_upgrade_followed_by_members_with_tags(server):
    alice, bob = await login(server, "up-alice"), await login(server, "up-bob")
    try:
        hs = server.server_name
        room = (await alice.room_create(name="ICU", alias="icu", invite=[bob.user_id])).room_id
        await bob.join(room)
        status, _ = await raw(bob, "PUT", f"/_matrix/client/v3/user/{enc(bob.user_id)}/rooms/"
                              f"{enc(room)}/tags/m.favourite", {"order": 0.5})
        assert status == 200
        first = await bob.sync(timeout=0, full_state=True)
        tags = [e for e in first.rooms.join[room].account_data if isinstance(e, nio.TagEvent)]
        assert tags and tags[0].tags == {"m.favourite": {"order": 0.5}}

        status, body = await raw(alice, "POST", f"/_matrix/client/v3/rooms/{enc(room)}/upgrade",
                                 {"new_version": "12"})
        assert status == 200, body
        new = body["replacement_room"]
        status, body = await raw(bob, "POST", f"/_matrix/client/v3/rooms/{enc(room)}/upgrade",
                                 {"new_version": "12"})
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")

        # Bob sees the tombstone and the invite, follows, and his tag comes along.
        tomb = await bob.room_get_state_event(room, "m.room.tombstone")
        assert tomb.content["replacement_room"] == new
        nxt = await bob.sync(timeout=0, since=first.next_batch)
        assert new in nxt.rooms.invite
        joined = await bob.join(new)
        assert isinstance(joined, nio.JoinResponse), joined
        after = await bob.sync(timeout=0, since=nxt.next_batch)
        moved = [e for e in after.rooms.join[new].account_data if isinstance(e, nio.TagEvent)]
        assert moved and moved[0].tags == {"m.favourite": {"order": 0.5}}
        create = await bob.room_get_state_event(new, "m.room.create")
        assert create.content["predecessor"] == {"room_id": room}
        assert (await bob.room_resolve_alias(f"#icu:{hs}")).room_id == new
        sent = await bob.room_send(new, "m.room.message", {"msgtype": "m.text", "body": "hi"})
        assert isinstance(sent, nio.RoomSendResponse), sent
        stuck = await bob.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "x"})
        assert isinstance(stuck, nio.RoomSendError) and stuck.status_code == "M_FORBIDDEN"

        # The closest event to "now, backwards" in the new room is Bob's message.
        status, body = await raw(bob, "GET", f"/_matrix/client/v1/rooms/{enc(new)}/"
                                 "timestamp_to_event?ts=99999999999999&dir=b")
        assert (status, body["event_id"]) == (200, sent.event_id)
    finally:
        await alice.close()
        await bob.close()


async def test_user_directory_turn_and_openid(server):
    carol, dan = await login(server, "ud-carol"), await login(server, "ud-dan")
    try:
        await dan.set_displayname("Dr. Dan Physio")
        room = (await carol.room_create(invite=[dan.user_id])).room_id
        await dan.join(room)
        status, body = await raw(carol, "POST", "/_matrix/client/v3/user_directory/search",
                                 {"search_term": "physio"})
        assert status == 200
        assert body == {"results": [{"user_id": dan.user_id, "display_name": "Dr. Dan Physio"}],
                        "limited": False}

        status, turn = await raw(carol, "GET", "/_matrix/client/v3/voip/turnServer")
        assert status == 200 and turn["uris"] == ["turn:turn.example.org:3478?transport=udp"]
        mac = hmac.new(TURN_SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
        assert turn["password"] == base64.b64encode(mac).decode()

        token = await carol.get_openid_token(carol.user_id)
        assert isinstance(token, nio.GetOpenIDTokenResponse), token
        assert token.matrix_server_name == server.server_name
        url = server.base_url + "/_matrix/federation/v1/openid/userinfo"
        async with httpx.AsyncClient() as http:
            ok = await http.get(url, params={"access_token": token.access_token})
            assert ok.json() == {"sub": carol.user_id}
            refused = await http.get(url, params={"access_token": carol.access_token})
            assert (refused.status_code, refused.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    finally:
        await carol.close()
        await dan.close()
