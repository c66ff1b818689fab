"""What another server gets back from backfill / get_missing_events / event: the history its
users may see (history visibility applied to servers); the rest comes redacted, so the other
server's copy of the room graph stays whole."""

from __future__ import annotations

from urllib.parse import quote as _quote

import orjson
import pytest
from django.conf import settings
from django.test import Client

from homeserver.protocol.xmatrix import authorization_header
from homeserver.services.events.send import do_send_event
from homeserver.services.rooms.create import do_create_room
from homeserver.storage import events as event_store
from tests.accounts.conftest import make_user
from tests.federation.test_ingest import KEY, REMOTE, join_remote, remote_key_known  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def quote(s: str) -> str:
    # The WSGI test client hands Django a decoded path; Django re-escapes it keeping these
    # characters (escape_uri_path), and the X-Matrix signature covers that form.
    return _quote(s, safe="!:$@")


def signed(method: str, path: str, body=None):
    auth = authorization_header(method, path, REMOTE, settings.PALISADE.server_name, body, KEY)
    if method == "GET":
        return Client().get(path, HTTP_AUTHORIZATION=auth)
    return Client().post(path, data=orjson.dumps(body), content_type="application/json",
                         HTTP_AUTHORIZATION=auth)


def room_with_history(visibility: str) -> tuple[str, list[str], str]:
    alice = make_user()
    room_id = do_create_room(alice, {"preset": "public_chat", "initial_state": [
        {"type": "m.room.history_visibility", "state_key": "",
         "content": {"history_visibility": visibility}}]})
    before = [do_send_event(room_id=room_id, sender=alice, event_type="m.room.message",
                            content={"msgtype": "m.text", "body": f"before {i}"})
              for i in range(2)]
    join_remote(room_id)
    after = do_send_event(room_id=room_id, sender=alice, event_type="m.room.message",
                          content={"msgtype": "m.text", "body": "after"})
    return room_id, before, after


def backfilled_contents(room_id: str, from_id: str) -> dict[str, dict]:
    path = f"/_matrix/federation/v1/backfill/{quote(room_id)}?v={quote(from_id)}&limit=50"
    r = signed("GET", path)
    assert r.status_code == 200, r.content
    return {event_store_id(p, room_id): p["content"] for p in r.json()["pdus"]}


def event_store_id(pdu: dict, room_id: str) -> str:
    from homeserver.protocol.hashing import compute_event_id
    from homeserver.storage.rooms import room_version

    return compute_event_id(pdu, room_version(room_id))


def test_joined_visibility_hides_history_from_before_the_servers_users_joined():
    room_id, before, after = room_with_history("joined")
    contents = backfilled_contents(room_id, after)
    assert contents[after]["body"] == "after"
    assert all(contents[b] == {} for b in before)  # sent, but redacted
    # The same through get_missing_events and /event.
    r = signed("POST", f"/_matrix/federation/v1/get_missing_events/{quote(room_id)}",
               {"earliest_events": [], "latest_events": [after], "limit": 50})
    missing = {event_store_id(p, room_id): p["content"] for p in r.json()["events"]}
    assert missing[before[1]] == {}
    r = signed("GET", f"/_matrix/federation/v1/event/{quote(before[0])}")
    assert r.json()["pdus"][0]["content"] == {}


def test_shared_visibility_gives_the_whole_history():
    room_id, before, after = room_with_history("shared")
    contents = backfilled_contents(room_id, after)
    assert [contents[b]["body"] for b in before] == ["before 0", "before 1"]
    assert event_store.get_event(before[0]).content["body"] == "before 0"
