"""Profiles, and their propagation into the rooms the user is joined to."""

from __future__ import annotations

import pytest

from tests.accounts.conftest import amake_user, server_name

pytestmark = pytest.mark.django_db(transaction=True)


async def test_get_and_set_displayname_and_avatar(api):
    user_id = await amake_user()
    token = (await api.login(user_id))["access_token"]
    resp = await api.call("PUT", f"/profile/{user_id}/displayname", {"displayname": "Dr. A"},
                          token=token)
    assert resp.status_code == 200 and resp.json() == {}
    resp = await api.call("PUT", f"/profile/{user_id}/avatar_url",
                          {"avatar_url": "mxc://example.org/abc"}, token=token)
    assert resp.status_code == 200
    resp = await api.call("GET", f"/profile/{user_id}", token=token)
    assert resp.json() == {"displayname": "Dr. A", "avatar_url": "mxc://example.org/abc"}
    resp = await api.call("GET", f"/profile/{user_id}/displayname", token=token)
    assert resp.json() == {"displayname": "Dr. A"}
    resp = await api.call("PUT", f"/profile/{user_id}/avatar_url", {"avatar_url": None},
                          token=token)
    resp = await api.call("GET", f"/profile/{user_id}/avatar_url", token=token)
    assert resp.json() == {}


async def test_profile_errors(api):
    alice = await amake_user()
    bob = await amake_user()
    token = (await api.login(alice))["access_token"]
    resp = await api.call("PUT", f"/profile/{bob}/displayname", {"displayname": "x"},
                          token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (403, "M_FORBIDDEN")
    resp = await api.call("PUT", f"/profile/{alice}/avatar_url",
                          {"avatar_url": "https://evil.example/a.png"}, token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_INVALID_PARAM")
    resp = await api.call("PUT", f"/profile/{alice}/displayname", {"displayname": 5},
                          token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_BAD_JSON")
    resp = await api.call("PUT", f"/profile/{alice}/displayname", {}, token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_MISSING_PARAM")
    resp = await api.call("GET", f"/profile/@nobody:{server_name()}", token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (404, "M_NOT_FOUND")
    resp = await api.call("GET", "/profile/@someone:remote.example", token=token)
    assert resp.status_code == 404
    resp = await api.call("GET", f"/profile/{alice}")
    assert (resp.status_code, resp.json()["errcode"]) == (401, "M_MISSING_TOKEN")


async def test_displayname_change_updates_member_events(api):
    user_id = await amake_user()
    token = (await api.login(user_id))["access_token"]
    rooms = []
    for _ in range(2):
        resp = await api.call("POST", "/createRoom", {}, token=token)
        assert resp.status_code == 200, resp.json()
        rooms.append(resp.json()["room_id"])
    resp = await api.call("PUT", f"/profile/{user_id}/displayname",
                          {"displayname": "Nurse Joy"}, token=token)
    assert resp.status_code == 200
    for room_id in rooms:
        resp = await api.call("GET", f"/rooms/{room_id}/state/m.room.member/{user_id}",
                              token=token)
        assert resp.status_code == 200, resp.json()
        assert resp.json()["membership"] == "join"
        assert resp.json()["displayname"] == "Nurse Joy"
