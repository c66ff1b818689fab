"""Inbound EDUs (services.federation.edus.handle_edu) as our clients see them through /sync, and
the EDUs our users' actions queue for the servers that share their rooms.

A remote user's join is written with the local event path (append_local_event +
persist_local_event) because this module tests EDUs, not PDU ingest: what matters here is that
the room's current state has the remote user joined, which is exactly what ingest produces.
"""

from __future__ import annotations

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from homeserver.models import OutboundItem, RemoteDevice
from homeserver.services.e2ee.federation_backend import FederationE2EE
from homeserver.services.events.append import append_local_event, persist_local_event
from homeserver.services.federation import device_cache
from homeserver.services.federation.edus import handle_edu
from homeserver.storage import rooms as room_store
from tests.e2ee.clientkeys import ClientDevice, SigningKeyPair, login_device, sign, upload
from tests.ephemeral.chat import ephemeral, room_with, send, session, sync

pytestmark = pytest.mark.django_db(transaction=True)

REMOTE = "remote.example"
OTHER = "other.example"
CAROL = f"@carol:{REMOTE}"
MALLORY = f"@mallory:{OTHER}"


def _member_remote(room_id: str, user_id: str, membership: str = "join") -> None:
    with transaction.atomic():
        group = room_store.lock_room(room_id)
        event = append_local_event(room_id=room_id, room_version=room_store.room_version(room_id),
                                   sender=user_id, event_type="m.room.member",
                                   content={"membership": membership}, state_key=user_id)
        persist_local_event(event, group)


join_remote = sync_to_async(_member_remote)
leave_remote = sync_to_async(lambda room_id, user_id: _member_remote(room_id, user_id, "leave"))
edu = sync_to_async(lambda origin, t, c: handle_edu(origin, {"edu_type": t, "content": c}))


async def public_room(api, owner_tok: str, *members) -> str:
    return await room_with(api, owner_tok, *members, preset="public_chat")


@pytest.fixture
async def alice(api):
    return await session(api)


async def test_remote_typing_reaches_local_sync_and_stops(api, alice):
    _user, tok = alice
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    since = (await sync(api, tok))["next_batch"]
    await edu(REMOTE, "m.typing", {"room_id": room, "user_id": CAROL, "typing": True})
    resp = await sync(api, tok, since)
    assert ephemeral(resp, room, "m.typing")[0]["content"]["user_ids"] == [CAROL]
    await edu(REMOTE, "m.typing", {"room_id": room, "user_id": CAROL, "typing": False})
    resp = await sync(api, tok, resp["next_batch"])
    assert ephemeral(resp, room, "m.typing")[0]["content"]["user_ids"] == []


async def test_typing_for_another_servers_user_or_a_foreign_room_is_ignored(api, alice):
    _user, tok = alice
    room = await public_room(api, tok)
    other_room = await public_room(api, tok)
    await join_remote(room, CAROL)
    await join_remote(room, MALLORY)
    since = (await sync(api, tok))["next_batch"]
    # remote.example speaks for other.example's user: dropped.
    await edu(REMOTE, "m.typing", {"room_id": room, "user_id": MALLORY, "typing": True})
    # carol is not in other_room (and no remote.example user is): dropped.
    await edu(REMOTE, "m.typing", {"room_id": other_room, "user_id": CAROL, "typing": True})
    # Garbage never raises.
    for content in ({"room_id": room, "user_id": CAROL, "typing": "yes"}, {"room_id": 5},
                    {"user_id": CAROL}):
        await edu(REMOTE, "m.typing", content)
    await sync_to_async(handle_edu)(REMOTE, {"edu_type": "m.typing", "content": "nope"})
    await sync_to_async(handle_edu)(REMOTE, {"edu_type": "m.unknown", "content": {}})
    resp = await sync(api, tok, since)
    for r in (room, other_room):
        assert all(not e["content"]["user_ids"] for e in ephemeral(resp, r, "m.typing"))


async def test_remote_read_receipt_reaches_local_sync(api, alice):
    _user, tok = alice
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    await join_remote(room, MALLORY)
    event_id = await send(api, tok, room)
    since = (await sync(api, tok))["next_batch"]
    await edu(REMOTE, "m.receipt", {room: {"m.read": {
        CAROL: {"event_ids": [event_id], "data": {"ts": 1234}},
        MALLORY: {"event_ids": [event_id], "data": {"ts": 1}},   # not remote.example's user
    }}})
    resp = await sync(api, tok, since)
    (receipt,) = ephemeral(resp, room, "m.receipt")
    readers = receipt["content"][event_id]["m.read"]
    assert readers == {CAROL: {"ts": 1234}}


async def test_receipt_for_unknown_event_is_dropped(api, alice):
    _user, tok = alice
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    since = (await sync(api, tok))["next_batch"]
    await edu(REMOTE, "m.receipt", {room: {"m.read": {
        CAROL: {"event_ids": ["$nope"], "data": {"ts": 1}}}}})
    assert ephemeral(await sync(api, tok, since), room, "m.receipt") == []


async def test_remote_presence_reaches_users_sharing_a_room(api, alice):
    _user, tok = alice
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    since = (await sync(api, tok))["next_batch"]
    await edu(REMOTE, "m.presence", {"push": [
        {"user_id": CAROL, "presence": "online", "last_active_ago": 1000,
         "currently_active": True, "status_msg": "on call"},
        {"user_id": MALLORY, "presence": "online", "last_active_ago": 0},   # other server
        {"user_id": f"@dave:{REMOTE}", "presence": "online", "last_active_ago": 0},  # no room
    ]})
    resp = await sync(api, tok, since)
    events = {e["sender"]: e["content"] for e in resp["presence"]["events"]}
    assert set(events) == {CAROL}
    assert events[CAROL]["presence"] == "online"
    assert events[CAROL]["status_msg"] == "on call"


async def test_to_device_from_remote_is_delivered_once(api, alice):
    user, _tok = alice
    dev = await login_device(api, user)
    room = await public_room(api, dev.token)
    await join_remote(room, CAROL)
    since = (await sync(api, dev.token))["next_batch"]
    content = {"sender": CAROL, "type": "m.room_key_request", "message_id": "m1",
               "messages": {user: {dev.device_id: {"n": 1}}, MALLORY: {"*": {"n": 2}}}}
    await edu(REMOTE, "m.direct_to_device", content)
    await edu(REMOTE, "m.direct_to_device", content)  # a retried transaction
    # Spoofed sender: dropped.
    await edu(REMOTE, "m.direct_to_device", {**content, "sender": MALLORY, "message_id": "m2"})
    resp = await sync(api, dev.token, since)
    assert resp["to_device"]["events"] == [
        {"sender": CAROL, "type": "m.room_key_request", "content": {"n": 1}}]
    # "*" reaches every device of the user.
    await edu(REMOTE, "m.direct_to_device", {**content, "message_id": "m3",
                                             "messages": {user: {"*": {"n": 3}}}})
    resp = await sync(api, dev.token, resp["next_batch"])
    assert [e["content"] for e in resp["to_device"]["events"]] == [{"n": 3}]


# --- device lists -------------------------------------------------------------------------------


def remote_device(user_id: str, device_id: str) -> ClientDevice:
    return ClientDevice(user_id, device_id, token="")


def _seed_cache(user_id: str, stream_id: int, *devices: ClientDevice,
                master: dict | None = None) -> None:
    """As if GET /user/devices had answered (the parse and store path a real fetch takes)."""
    body = {"user_id": user_id, "stream_id": stream_id,
            "devices": [{"device_id": d.device_id, "keys": d.device_keys()} for d in devices]}
    if master:
        body["master_key"] = master
    fetched = device_cache.parse_user_devices(user_id, body)
    device_cache._store_fetched(fetched)


seed_cache = sync_to_async(_seed_cache)
query_remote = sync_to_async(lambda users: FederationE2EE().query_keys(
    "@x:test", {REMOTE: users}, 3000))


async def test_device_list_update_marks_change_and_updates_the_cache(api, alice):
    user, _tok = alice
    dev = await login_device(api, user)
    room = await public_room(api, dev.token)
    await join_remote(room, CAROL)
    phone, laptop = remote_device(CAROL, "PHONE"), remote_device(CAROL, "LAPTOP")
    await seed_cache(CAROL, 5, phone)
    since = (await sync(api, dev.token))["next_batch"]
    await edu(REMOTE, "m.device_list_update", {
        "user_id": CAROL, "device_id": "LAPTOP", "stream_id": 6, "prev_id": [5],
        "device_display_name": "Carol's laptop", "keys": laptop.device_keys()})
    resp = await sync(api, dev.token, since)
    assert CAROL in resp["device_lists"]["changed"]
    # /keys/query is answered from the cache, without asking remote.example (unreachable).
    found = await query_remote({CAROL: []})
    assert found.failures == {}
    assert set(found.device_keys[CAROL]) == {"PHONE", "LAPTOP"}
    assert found.device_keys[CAROL]["LAPTOP"]["unsigned"] == {
        "device_display_name": "Carol's laptop"}
    # Deletion.
    await edu(REMOTE, "m.device_list_update", {
        "user_id": CAROL, "device_id": "PHONE", "stream_id": 7, "prev_id": [6], "deleted": True})
    found = await query_remote({CAROL: []})
    assert set(found.device_keys[CAROL]) == {"LAPTOP"}


async def test_cache_of_a_user_who_left_every_shared_room_is_not_used(api, alice):
    from homeserver.models import RemoteDeviceList

    _user, tok = alice
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    await seed_cache(CAROL, 5, remote_device(CAROL, "PHONE"))
    assert (await query_remote({CAROL: []})).failures == {}
    await leave_remote(room, CAROL)
    # No update about carol will arrive any more: ask her server (unreachable here).
    found = await query_remote({CAROL: []})
    assert REMOTE in found.failures and CAROL not in found.device_keys
    assert not await sync_to_async(RemoteDeviceList.objects.filter(user_id=CAROL).exists)()


async def test_device_list_update_with_unknown_prev_id_marks_the_list_stale(api, alice):
    _user, tok = alice
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    await seed_cache(CAROL, 5, remote_device(CAROL, "PHONE"))
    await edu(REMOTE, "m.device_list_update", {
        "user_id": CAROL, "device_id": "NEW", "stream_id": 9, "prev_id": [8],
        "keys": remote_device(CAROL, "NEW").device_keys()})
    # The missed update means the cache cannot be trusted: the next query must refetch (here
    # remote.example cannot be reached, so it is reported as a failure, not answered stale).
    found = await query_remote({CAROL: []})
    assert REMOTE in found.failures
    assert await sync_to_async(RemoteDevice.objects.filter(device_id="NEW").exists)() is False


async def test_device_list_update_with_bad_keys_or_spoofed_user_is_dropped(api, alice, caplog):
    user, _tok = alice
    dev = await login_device(api, user)
    room = await public_room(api, dev.token)
    await join_remote(room, CAROL)
    await join_remote(room, MALLORY)
    await seed_cache(CAROL, 5, remote_device(CAROL, "PHONE"))
    since = (await sync(api, dev.token))["next_batch"]
    forged = remote_device(CAROL, "EVIL").device_keys()
    forged["keys"]["ed25519:EVIL"] = remote_device(CAROL, "X").ed25519_public  # bad self-sig
    await edu(REMOTE, "m.device_list_update", {
        "user_id": CAROL, "device_id": "EVIL", "stream_id": 6, "prev_id": [5], "keys": forged})
    await edu(REMOTE, "m.device_list_update", {
        "user_id": MALLORY, "device_id": "D", "stream_id": 1, "prev_id": []})
    resp = await sync(api, dev.token, since)
    assert resp["device_lists"]["changed"] == []
    found = await query_remote({CAROL: []})
    assert set(found.device_keys[CAROL]) == {"PHONE"}
    # Dropped as bad input (logged at INFO), not as a failure of ours.
    assert not [r for r in caplog.records if r.levelname == "ERROR" and "edus" in r.name]


async def test_signing_key_update_replaces_the_cached_master_key(api, alice):
    _user, tok = alice
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    old, new = SigningKeyPair(), SigningKeyPair()

    def master(pair):
        return {"user_id": CAROL, "usage": ["master"], "keys": {pair.key_id: pair.public}}

    await seed_cache(CAROL, 5, remote_device(CAROL, "PHONE"), master=master(old))
    assert (await query_remote({CAROL: []})).master_keys[CAROL] == master(old)
    new_master = sign(master(new), CAROL, "ed25519:PHONE", remote_device(CAROL, "PHONE").ed25519)
    await edu(REMOTE, "m.signing_key_update", {"user_id": CAROL, "master_key": new_master})
    assert (await query_remote({CAROL: []})).master_keys[CAROL] == new_master
    # Another server's user: ignored.
    await edu(REMOTE, "m.signing_key_update", {"user_id": MALLORY, "master_key": master(old)})


# --- outbound -----------------------------------------------------------------------------------


def _queued(edu_type: str) -> list[tuple[str, dict]]:
    out = []
    for dest, text in OutboundItem.objects.order_by("id").values_list("destination", "json"):
        item = orjson.loads(text)
        if item.get("edu_type") == edu_type:
            out.append((dest, item["content"]))
    return out


queued = sync_to_async(_queued)


async def test_local_typing_and_public_receipts_go_to_servers_in_the_room(api, alice):
    user, tok = alice
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    r = await api.call("PUT", f"/rooms/{room}/typing/{user}", {"typing": True, "timeout": 20000},
                       token=tok)
    assert r.status_code == 200
    assert await queued("m.typing") == [(REMOTE, {"room_id": room, "user_id": user,
                                                  "typing": True})]
    event_id = await send(api, tok, room)
    r = await api.call("POST", f"/rooms/{room}/receipt/m.read.private/{event_id}", {}, token=tok)
    assert r.status_code == 200
    assert await queued("m.receipt") == []          # private receipts never leave
    r = await api.call("POST", f"/rooms/{room}/receipt/m.read/{event_id}", {}, token=tok)
    assert r.status_code == 200
    ((dest, content),) = await queued("m.receipt")
    assert dest == REMOTE
    assert content[room]["m.read"][user]["event_ids"] == [event_id]


async def test_local_presence_goes_to_servers_sharing_a_room(api, alice):
    user, tok = alice
    r = await api.call("PUT", f"/presence/{user}/status", {"presence": "online"}, token=tok)
    assert r.status_code == 200
    assert await queued("m.presence") == []          # shares no room with anyone remote
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    r = await api.call("PUT", f"/presence/{user}/status",
                       {"presence": "unavailable", "status_msg": "lunch"}, token=tok)
    assert r.status_code == 200
    ((dest, content),) = await queued("m.presence")
    assert dest == REMOTE
    (push,) = content["push"]
    assert (push["user_id"], push["presence"], push["status_msg"]) == (user, "unavailable",
                                                                       "lunch")


async def test_local_device_changes_send_device_list_updates_in_sequence(api, alice):
    user, tok = alice
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    dev = await login_device(api, user)             # a new device: update 1... (after the join)
    await upload(api, dev, {"device_keys": dev.device_keys()})
    updates = [c for d, c in await queued("m.device_list_update") if d == REMOTE]
    assert [u["device_id"] for u in updates] == [dev.device_id, dev.device_id]
    first, second = updates
    assert second["prev_id"] == [first["stream_id"]]
    assert second["stream_id"] == first["stream_id"] + 1
    assert second["keys"] == dev.device_keys()
    r = await api.call("POST", "/logout", {}, token=dev.token)
    assert r.status_code == 200
    last = [c for d, c in await queued("m.device_list_update") if d == REMOTE][-1]
    assert (last["device_id"], last["deleted"], last["prev_id"]) == (
        dev.device_id, True, [second["stream_id"]])


async def test_renaming_a_device_sends_its_new_name(api, alice):
    user, tok = alice
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    dev = await login_device(api, user)
    r = await api.call("PUT", f"/devices/{dev.device_id}", {"display_name": "Desk"},
                       token=dev.token)
    assert r.status_code == 200
    last = [c for d, c in await queued("m.device_list_update") if d == REMOTE][-1]
    assert (last["device_id"], last["device_display_name"]) == (dev.device_id, "Desk")
    r = await api.call("PUT", "/devices/NOSUCH", {"display_name": "x"}, token=dev.token)
    assert r.status_code == 404
    assert [c for d, c in await queued("m.device_list_update")][-1] == last  # nothing sent


async def test_old_to_device_message_ids_are_pruned(api, alice, monkeypatch):
    from homeserver.models import InboundToDevice
    from homeserver.services.federation import edus

    _user, tok = alice
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    monkeypatch.setattr(edus, "PRUNE_CHANCE", 1.0)
    monkeypatch.setattr(edus, "now_ms", lambda: 1_000)
    content = {"sender": CAROL, "type": "m.x", "message_id": "old", "messages": {}}
    await edu(REMOTE, "m.direct_to_device", content)
    monkeypatch.setattr(edus, "now_ms", lambda: 1_000 + edus.TO_DEVICE_DEDUP_MS + 1)
    await edu(REMOTE, "m.direct_to_device", {**content, "message_id": "new"})
    ids = await sync_to_async(lambda: sorted(
        InboundToDevice.objects.values_list("message_id", flat=True)))()
    assert ids == ["new"]


async def test_active_users_presence_is_resent_before_other_servers_time_it_out(api, alice):
    from django.core.cache import cache

    user, tok = alice
    room = await public_room(api, tok)
    await join_remote(room, CAROL)
    r = await api.call("PUT", f"/presence/{user}/status", {"presence": "online"}, token=tok)
    assert r.status_code == 200
    assert len(await queued("m.presence")) == 1
    await sync(api, tok)                      # active, unchanged, just sent: nothing new
    assert len(await queued("m.presence")) == 1
    # 25 minutes later (the markers have expired), the next /sync re-sends it.
    await sync_to_async(cache.delete_many)([f"palisade:presence:federated:{user}",
                                            f"palisade:presence:{user}"])
    await sync(api, tok)
    sent = await queued("m.presence")
    assert len(sent) == 2
    assert sent[-1][1]["push"][0]["presence"] == "online"
