"""Account data (global and per room) and stored filters."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from homeserver.storage.account_data import account_data_changes
from homeserver.storage.stream import current_stream_position
from tests.accounts.conftest import amake_user

pytestmark = pytest.mark.django_db(transaction=True)
ROOM = "!abcdef:example.org"


async def test_global_account_data_round_trip_and_stream(api):
    user_id = await amake_user()
    token = (await api.login(user_id))["access_token"]
    before = await sync_to_async(current_stream_position)()
    resp = await api.call("PUT", f"/user/{user_id}/account_data/m.direct",
                          {"@b:example.org": [ROOM]}, token=token)
    assert resp.status_code == 200 and resp.json() == {}
    after = await sync_to_async(current_stream_position)()
    assert after == before + 1
    resp = await api.call("GET", f"/user/{user_id}/account_data/m.direct", token=token)
    assert resp.json() == {"@b:example.org": [ROOM]}
    await api.call("PUT", f"/user/{user_id}/account_data/m.direct", {"v": 2}, token=token)
    resp = await api.call("GET", f"/user/{user_id}/account_data/m.direct", token=token)
    assert resp.json() == {"v": 2}
    changes = await sync_to_async(account_data_changes)(user_id, after, after + 100)
    assert changes == ({"m.direct": {"v": 2}}, {})


async def test_room_account_data(api):
    user_id = await amake_user()
    token = (await api.login(user_id))["access_token"]
    path = f"/user/{user_id}/rooms/{ROOM}/account_data/m.tag.example"
    resp = await api.call("PUT", path, {"x": 1}, token=token)
    assert resp.status_code == 200
    assert (await api.call("GET", path, token=token)).json() == {"x": 1}
    resp = await api.call("GET", f"/user/{user_id}/account_data/m.tag.example", token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (404, "M_NOT_FOUND")
    changes = await sync_to_async(account_data_changes)(user_id, None, 10**12)
    assert changes == ({}, {ROOM: {"m.tag.example": {"x": 1}}})


async def test_account_data_errors(api):
    alice = await amake_user()
    bob = await amake_user()
    token = (await api.login(alice))["access_token"]
    resp = await api.call("PUT", f"/user/{bob}/account_data/x.y", {}, token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (403, "M_FORBIDDEN")
    resp = await api.call("GET", f"/user/{bob}/account_data/x.y", token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (403, "M_FORBIDDEN")
    resp = await api.call("PUT", f"/user/{alice}/account_data/m.fully_read", {}, token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (405, "M_BAD_JSON")
    resp = await api.call("PUT", f"/user/{alice}/rooms/not-a-room/account_data/x.y", {},
                          token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_INVALID_PARAM")
    resp = await api.call("PUT", f"/user/{alice}/account_data/x.y", raw=b"nope", token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_NOT_JSON")
    resp = await api.call("PUT", f"/user/{alice}/account_data/x.y", raw=b"[]", token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_BAD_JSON")
    resp = await api.call("GET", f"/user/{alice}/account_data/x.y", token=token)
    assert resp.status_code == 404
    resp = await api.call("DELETE", f"/user/{alice}/account_data/x.y", token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (405, "M_UNRECOGNIZED")


async def test_filters(api):
    alice = await amake_user()
    bob = await amake_user()
    token = (await api.login(alice))["access_token"]
    definition = {"room": {"timeline": {"limit": 20, "types": ["m.room.message"]},
                           "include_leave": False},
                  "presence": {"not_types": ["*"]}, "event_fields": ["type", "content.body"]}
    resp = await api.call("POST", f"/user/{alice}/filter", definition, token=token)
    assert resp.status_code == 200
    filter_id = resp.json()["filter_id"]
    assert not filter_id.startswith("{")
    resp = await api.call("GET", f"/user/{alice}/filter/{filter_id}", token=token)
    assert resp.json() == definition
    # Re-uploading the same filter returns the same id.
    again = await api.call("POST", f"/user/{alice}/filter", definition, token=token)
    assert again.json()["filter_id"] == filter_id
    resp = await api.call("GET", f"/user/{alice}/filter/unknown", token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (404, "M_NOT_FOUND")
    resp = await api.call("GET", f"/user/{bob}/filter/{filter_id}", token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (403, "M_FORBIDDEN")
    resp = await api.call("POST", f"/user/{bob}/filter", definition, token=token)
    assert resp.status_code == 403


@pytest.mark.parametrize("definition", [
    {"room": {"timeline": {"limit": "ten"}}},
    {"room": {"timeline": {"limit": 0}}},
    {"room": {"rooms": "!a:b"}},
    {"presence": {"types": [1]}},
    {"event_format": "xml"},
    {"event_fields": "type"},
    {"room": {"state": {"lazy_load_members": "yes"}}},
    {"room": []},
])
async def test_filter_shape_is_validated(api, definition):
    alice = await amake_user()
    token = (await api.login(alice))["access_token"]
    resp = await api.call("POST", f"/user/{alice}/filter", definition, token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_BAD_JSON")


async def test_stored_filter_is_usable_by_sync(api):
    alice = await amake_user()
    token = (await api.login(alice))["access_token"]
    resp = await api.call("POST", f"/user/{alice}/filter",
                          {"room": {"timeline": {"limit": 1}}}, token=token)
    filter_id = resp.json()["filter_id"]
    resp = await api.call("GET", f"/sync?filter={filter_id}&timeout=0", token=token)
    assert resp.status_code == 200, resp.json()
    resp = await api.call("GET", "/sync?filter=nope&timeout=0", token=token)
    assert resp.status_code == 400
