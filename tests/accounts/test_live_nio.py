"""A real Matrix client library (matrix-nio) against the real server process."""

from __future__ import annotations

import asyncio

import nio
import pytest

from tests.live_server import start_server

pytestmark = pytest.mark.live
PASSWORD = "a long and proper password"


@pytest.fixture
def palisade_server(tmp_path):
    server = start_server(tmp_path)
    yield server
    server.stop()


async def test_nio_login_whoami_devices_logout(palisade_server):
    registered = await asyncio.to_thread(palisade_server.register_user, "alice", PASSWORD)
    user_id = f"@alice:{palisade_server.server_name}"
    assert registered["user_id"] == user_id

    client = nio.AsyncClient(palisade_server.base_url, "alice")
    try:
        login = await client.login(PASSWORD, device_name="nio live test")
        assert isinstance(login, nio.LoginResponse), login
        assert login.user_id == user_id
        token, device_id = login.access_token, login.device_id

        whoami = await client.whoami()
        assert isinstance(whoami, nio.WhoamiResponse), whoami
        assert (whoami.user_id, whoami.device_id, whoami.is_guest) == (user_id, device_id, False)

        devices = await client.devices()
        assert isinstance(devices, nio.DevicesResponse), devices
        by_id = {d.id: d for d in devices.devices}
        assert set(by_id) == {device_id, registered["device_id"]}
        assert by_id[device_id].display_name == "nio live test"

        logout = await client.logout()
        assert isinstance(logout, nio.LogoutResponse), logout
    finally:
        await client.close()

    stale = nio.AsyncClient(palisade_server.base_url)
    try:
        stale.restore_login(user_id, device_id, token)
        after = await stale.whoami()
        assert isinstance(after, nio.WhoamiError)
        assert after.status_code == "M_UNKNOWN_TOKEN"
    finally:
        await stale.close()
