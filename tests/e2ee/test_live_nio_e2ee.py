"""End-to-end encryption through the real server process with a real client library: matrix-nio
with its vodozemac (Olm/Megolm) backend.

Alice and Bob log in with fresh devices and upload keys; Alice creates an encrypted room; each
side decrypts the other's messages to the exact plaintext (Olm sessions from claimed one-time
keys carry the Megolm keys by to-device). Bob's third device appears in Alice's device list and
receives the room key by to-device. Bob backs his room keys up to the server (encrypted to a
backup key the server never sees), and a brand-new device of his restores Alice's session from
the backup and decrypts a message it was never sent a key for.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import nio
import pytest
import vodozemac

from tests.e2ee.clientkeys import b64
from tests.live_server import start_server

pytestmark = pytest.mark.live
PASSWORD = "a long and proper password"
MEGOLM = "m.megolm.v1.aes-sha2"
BACKUP_ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("live-e2ee"))
    yield s
    s.stop()


class People:
    """nio clients with crypto stores under one folder; all closed at the end."""

    def __init__(self, server, root: Path) -> None:
        self.server, self.root, self.clients = server, root, []

    async def device(self, localpart: str, name: str, *, register: bool = False):
        if register:
            await asyncio.to_thread(self.server.register_user, localpart, PASSWORD)
        store = self.root / name
        store.mkdir()
        config = nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False)
        client = nio.AsyncClient(self.server.base_url, f"@{localpart}:{self.server.server_name}",
                                 store_path=str(store), config=config)
        self.clients.append(client)
        resp = await client.login(PASSWORD, device_name=name)
        assert isinstance(resp, nio.LoginResponse), resp
        assert client.olm is not None
        uploaded = await client.keys_upload()
        assert isinstance(uploaded, nio.KeysUploadResponse), uploaded
        assert uploaded.signed_curve25519_count > 0
        return client

    async def close(self) -> None:
        for c in self.clients:
            await c.close()


async def housekeeping(client: nio.AsyncClient) -> None:
    """What a client's sync loop does between syncs to keep its keys fresh."""
    if client.should_upload_keys:
        await client.keys_upload()
    if client.should_query_keys:
        await client.keys_query()
    if client.should_claim_keys:
        await client.keys_claim(client.get_users_for_key_claiming())


async def sync_until(client: nio.AsyncClient, pred, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = await client.sync(timeout=1000)
        assert isinstance(resp, nio.SyncResponse), resp
        await housekeeping(client)
        found = pred(resp)
        if found:
            return found
    raise AssertionError(f"{client.user_id}/{client.device_id}: condition not met")


async def decrypted_text(client: nio.AsyncClient, room_id: str, event_id: str) -> str:
    """Sync until the event arrives and decrypts; its plaintext body."""
    seen: dict[str, Any] = {}

    def pred(resp: nio.SyncResponse):
        room = resp.rooms.join.get(room_id)
        for ev in room.timeline.events if room else []:
            if ev.event_id == event_id:
                seen["event"] = ev
        ev = seen.get("event")
        if isinstance(ev, nio.MegolmEvent):  # the key may come in a later sync than the event
            try:
                ev = seen["event"] = client.decrypt_event(ev)
            except nio.EncryptionError:
                return None
        return ev if isinstance(ev, nio.RoomMessageText) else None

    event = await sync_until(client, pred)
    assert event.decrypted
    return event.body


async def send_text(sender: nio.AsyncClient, room_id: str, body: str, server) -> str:
    await housekeeping(sender)
    resp = await sender.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body},
                                  ignore_unverified_devices=True)
    assert isinstance(resp, nio.RoomSendResponse), resp
    # What the server holds is ciphertext only.
    raw = httpx.get(f"{server.base_url}/_matrix/client/v3/rooms/{quote(room_id)}/event/"
                    f"{quote(resp.event_id)}",
                    headers={"Authorization": f"Bearer {sender.access_token}"}, timeout=30)
    event = raw.raise_for_status().json()
    assert event["type"] == "m.room.encrypted" and event["content"]["algorithm"] == MEGOLM
    assert body not in raw.text
    return resp.event_id


def backup_payload(session) -> dict:
    """Spec: "Backup algorithm: m.megolm_backup.v1.curve25519-aes-sha2": the session data
    before encryption to the backup key."""
    return {
        "algorithm": MEGOLM,
        "forwarding_curve25519_key_chain": list(session.forwarding_chain),
        "sender_claimed_keys": {"ed25519": session.ed25519},
        "sender_key": session.sender_key,
        "session_key": session.export_session(session.first_known_index),
    }


async def test_two_users_chat_encrypted_add_a_device_and_restore_from_backup(server, tmp_path):
    people = People(server, tmp_path)
    try:
        alice = await people.device("alice", "alice-laptop", register=True)
        bob = await people.device("bob", "bob-phone", register=True)

        created = await alice.room_create(
            name="Ward 5 (encrypted)", invite=[bob.user_id],
            initial_state=[{"type": "m.room.encryption", "state_key": "",
                            "content": {"algorithm": MEGOLM}}])
        assert isinstance(created, nio.RoomCreateResponse), created
        room = created.room_id
        await sync_until(bob, lambda r: room in r.rooms.invite)
        assert isinstance(await bob.join(room), nio.JoinResponse)
        await sync_until(bob, lambda r: room in bob.rooms and bob.rooms[room].encrypted)
        await sync_until(alice, lambda r: room in alice.rooms
                         and bob.user_id in alice.rooms[room].users)

        # Messages both ways, each decrypted to the exact plaintext.
        first = "Bed 4: potassium 6.1, repeat bloods \u2695"
        first_id = await send_text(alice, room, first, server)
        assert await decrypted_text(bob, room, first_id) == first
        reply = "Repeated, 5.2 now. Thanks!"
        reply_id = await send_text(bob, room, reply, server)
        assert await decrypted_text(alice, room, reply_id) == reply

        # Bob's third device: a device-list change Alice sees; it gets the key by to-device.
        bob_tablet = await people.device("bob", "bob-tablet")
        await sync_until(alice, lambda r: bob.user_id in r.device_list.changed)
        await housekeeping(alice)
        assert bob_tablet.device_id in {
            d.id for d in alice.device_store.active_user_devices(bob.user_id)}
        shared = await alice.share_group_session(room, ignore_unverified_devices=True)
        assert isinstance(shared, nio.ShareGroupSessionResponse), shared
        third = "Handover at 19:00, tablet at the desk"
        third_id = await send_text(alice, room, third, server)
        assert await decrypted_text(bob_tablet, room, third_id) == third
        assert await decrypted_text(bob, room, third_id) == third

        # Bob backs up his room keys, encrypted to a backup key only he holds.
        backup_key = vodozemac.PkDecryption()
        api = httpx.Client(base_url=server.base_url + "/_matrix/client/v3", timeout=30,
                           headers={"Authorization": f"Bearer {bob.access_token}"})
        version = api.post("/room_keys/version", json={
            "algorithm": BACKUP_ALGORITHM,
            "auth_data": {"public_key": backup_key.public_key.to_base64()},
        }).raise_for_status().json()["version"]
        encrypt = vodozemac.PkEncryption.from_key(backup_key.public_key)
        sessions = {}
        for s in bob.olm.inbound_group_store:
            if s.room_id != room:
                continue
            message = encrypt.encrypt(json.dumps(backup_payload(s)).encode())
            sessions[s.id] = {"first_message_index": s.first_known_index, "forwarded_count": 0,
                              "is_verified": False, "session_data": {
                                  "ephemeral": b64(message.ephemeral_key),
                                  "ciphertext": b64(message.ciphertext), "mac": b64(message.mac)}}
        assert sessions
        stored = api.put(f"/room_keys/keys/{quote(room, safe='')}", params={"version": version},
                         json={"sessions": sessions}).raise_for_status().json()
        assert stored["count"] == len(sessions)

        # A brand-new device of Bob's, never sent the first message's key, restores it.
        bob_laptop = await people.device("bob", "bob-new-laptop")
        got = await bob_laptop.room_get_event(room, first_id)
        assert isinstance(got, nio.RoomGetEventResponse), got
        event = got.event
        assert isinstance(event, nio.MegolmEvent)
        with pytest.raises(nio.EncryptionError):
            bob_laptop.decrypt_event(event)
        api.headers["Authorization"] = f"Bearer {bob_laptop.access_token}"
        current = api.get("/room_keys/version").raise_for_status().json()
        assert current["version"] == version and current["count"] == len(sessions)
        backed_up = api.get(f"/room_keys/keys/{quote(room, safe='')}/"
                            f"{quote(event.session_id, safe='')}",
                            params={"version": version}).raise_for_status().json()
        data = backed_up["session_data"]
        payload = json.loads(backup_key.decrypt(
            vodozemac.Message.from_base64(data["ciphertext"], data["mac"], data["ephemeral"])))
        restored = nio.crypto.InboundGroupSession.import_session(
            payload["session_key"], payload["sender_claimed_keys"]["ed25519"],
            payload["sender_key"], room, payload["forwarding_curve25519_key_chain"])
        assert restored.id == event.session_id
        bob_laptop.olm.inbound_group_store.add(restored)
        plain = bob_laptop.decrypt_event(event)
        assert isinstance(plain, nio.RoomMessageText) and plain.body == first
        api.close()
    finally:
        await people.close()
