"""The `strict` profile in the real server process, configured from its TOML file, driven by a
real Matrix client library (matrix-nio, without its olm extra: it sends what it is given, so
`m.room.encrypted` content here is opaque test ciphertext)."""

from __future__ import annotations

import asyncio

import httpx
import nio
import pytest

from tests.live_server import start_server

pytestmark = pytest.mark.live
PASSWORD = "a long and proper password"
MEGOLM = "m.megolm.v1.aes-sha2"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("live-strict"), compliance_profile="strict")
    yield s
    s.stop()


async def test_strict_server_refuses_plaintext_and_accepts_encrypted(server):
    await asyncio.to_thread(server.register_user, "alice", PASSWORD)
    alice = nio.AsyncClient(server.base_url, "alice")
    try:
        assert isinstance(await alice.login(PASSWORD), nio.LoginResponse)

        refused = await alice.room_create(name="Ward 7")
        assert isinstance(refused, nio.RoomCreateError), refused
        assert refused.status_code == "M_FORBIDDEN"

        created = await alice.room_create(name="Ward 7", initial_state=[
            {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}])
        assert isinstance(created, nio.RoomCreateResponse), created
        room = created.room_id

        plain = await alice.room_send(room, "m.room.message",
                                      {"msgtype": "m.text", "body": "cleartext"})
        assert isinstance(plain, nio.RoomSendError) and plain.status_code == "M_FORBIDDEN"
        sealed = await alice.room_send(room, "m.room.encrypted", {
            "algorithm": MEGOLM, "ciphertext": "AwgAEnAC", "sender_key": "k",
            "session_id": "s", "device_id": alice.device_id})
        assert isinstance(sealed, nio.RoomSendResponse), sealed

        weaken = await alice.room_put_state(room, "m.room.encryption", {})
        assert isinstance(weaken, nio.RoomPutStateError) and weaken.status_code == "M_FORBIDDEN"

        async with httpx.AsyncClient() as http:
            r = await http.get(f"{server.base_url}/_matrix/client/v3/rooms/{room}/messages",
                               params={"dir": "b", "limit": 50},
                               headers={"Authorization": f"Bearer {alice.access_token}"})
        types = [e["type"] for e in r.json()["chunk"]]
        assert "m.room.encrypted" in types and "m.room.message" not in types
        assert "cleartext" not in r.text
    finally:
        await alice.close()
