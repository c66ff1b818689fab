"""Federation with a real Synapse (issue 7): one Synapse (tests/federation/synapse.py) and one
live Palisade (tests/federation/peers.py) per module, talking over loopback TLS.

Signatures are checked with `signedjson` (the reference library Synapse itself uses), not with
our own protocol code, so a bug there cannot hide behind itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import nio
import pytest
from asgiref.sync import sync_to_async
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json

from audit.actions import AuditAction
from homeserver.protocol.unpadded_base64 import decode_base64
from homeserver.services.federation import keyring
from homeserver.storage.server_keys import keys_for
from tests.accounts.conftest import configure
from tests.federation.peers import (  # noqa: F401 - fixture palisade_peer
    palisade_peer_fixture,
    start_palisade_peer,
)
from tests.federation.synapse import (  # noqa: F401 - fixture synapse
    pinned_synapse_version,
    profile_path,
    synapse_fixture,
)

pytestmark = pytest.mark.live

PASSWORD = "a long and proper password"


def verify_keys_of(doc: dict) -> dict[str, bytes]:
    return {key_id: decode_base64(entry["key"]) for key_id, entry in doc["verify_keys"].items()}


def assert_signed_by(doc: dict, server_name: str, verify_keys: dict[str, bytes]) -> None:
    """`doc` carries a valid signature of `server_name` with one of `verify_keys`."""
    sigs = doc.get("signatures", {}).get(server_name, {})
    assert sigs, f"no signature of {server_name} on {doc}"
    for key_id in sigs:
        assert key_id in verify_keys, f"{server_name} signed with unknown key {key_id}"
        verify_key = decode_verify_key_bytes(key_id, verify_keys[key_id])
        verify_signed_json(doc, server_name, verify_key)  # raises SignatureVerifyException


def notary_query(synapse, server_name: str, key_id: str) -> httpx.Response:
    """POST /_matrix/key/v2/query for one key (Synapse requires minimum_valid_until_ts)."""
    criteria = {"minimum_valid_until_ts": int(time.time() * 1000)}
    return httpx.post(synapse.fed_url + "/_matrix/key/v2/query", verify=False, timeout=30,
                      json={"server_keys": {server_name: {key_id: criteria}}})


def poll(fetch, until, timeout: float = 60.0, interval: float = 0.3):
    """fetch() until until(result) holds; the last result otherwise (for the assertion)."""
    deadline = time.monotonic() + timeout
    result = fetch()
    while not until(result) and time.monotonic() < deadline:
        time.sleep(interval)
        result = fetch()
    return result


def test_the_synapse_is_the_pinned_release(synapse):
    """The interop results hold for the Synapse release pinned in synapse-requirements.txt."""
    r = synapse.federation_get("/_matrix/federation/v1/version")
    assert r.status_code == 200, r.text
    server = r.json()["server"]
    assert server["name"] == "Synapse"
    assert server["version"].split()[0] == pinned_synapse_version()


# --- server keys ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_palisade_fetches_and_verifies_synapse_keys(synapse, settings):
    # Spec: server-server API "Retrieving server keys" / "Publishing Keys".
    configure(settings, federation={"verify_tls": False, "allow_private_addresses": True})
    keys = await keyring.fetch_keys_directly(synapse.server_name)

    published = synapse.federation_get("/_matrix/key/v2/server").json()
    assert {k.key_id for k in keys} == set(published["verify_keys"])
    stored = await sync_to_async(keys_for)(synapse.server_name)
    assert {k.key_id for k in stored} == set(published["verify_keys"])
    key_id = next(iter(published["verify_keys"]))
    assert await keyring.get_verify_key(synapse.server_name, key_id) == \
        verify_keys_of(published)[key_id]


def test_synapse_notary_serves_palisade_keys_signed_by_palisade(synapse, palisade_peer):
    """Synapse fetched our key document from our TLS federation listener, checked our
    self-signature, and serves it as a notary with its own signature added.
    Spec: server-server API "Querying Keys Through Another Server"."""
    ours = httpx.get(palisade_peer.fed_url + "/_matrix/key/v2/server", verify=False,
                     timeout=30).json()
    synapse_keys = verify_keys_of(synapse.federation_get("/_matrix/key/v2/server").json())

    # Asking for a key id makes Synapse fetch it on a cache miss (Synapse answers a query for
    # "all keys" from its cache only), so this is Synapse reaching our key server over TLS.
    key_id = next(iter(ours["verify_keys"]))
    r = notary_query(synapse, palisade_peer.server_name, key_id)
    assert r.status_code == 200, r.text
    docs = r.json()["server_keys"]
    assert len(docs) == 1, f"{docs}\n{synapse.log()[-3000:]}"
    (doc,) = docs
    assert doc["server_name"] == palisade_peer.server_name
    assert doc["verify_keys"] == ours["verify_keys"]
    assert_signed_by(doc, palisade_peer.server_name, verify_keys_of(ours))
    assert_signed_by(doc, synapse.server_name, synapse_keys)

    # Now cached: the single-server form serves the same document, re-signed by Synapse.
    r = synapse.federation_get(f"/_matrix/key/v2/query/{quote(palisade_peer.server_name)}")
    assert r.status_code == 200, r.text
    (doc,) = r.json()["server_keys"]
    assert doc["verify_keys"] == ours["verify_keys"]
    assert_signed_by(doc, palisade_peer.server_name, verify_keys_of(ours))
    assert_signed_by(doc, synapse.server_name, synapse_keys)


def test_our_self_signature_is_what_synapse_relies_on(synapse, palisade_peer):
    """A notary document whose content was altered no longer verifies with our key (so the
    check above is a real signature check, not a formality)."""
    ours = httpx.get(palisade_peer.fed_url + "/_matrix/key/v2/server", verify=False,
                     timeout=30).json()
    key_id = next(iter(ours["verify_keys"]))
    r = notary_query(synapse, palisade_peer.server_name, key_id)
    (doc,) = r.json()["server_keys"]
    assert_signed_by(doc, palisade_peer.server_name, verify_keys_of(ours))  # as served
    doc["valid_until_ts"] += 1
    with pytest.raises(SignatureVerifyException):
        assert_signed_by(doc, palisade_peer.server_name, verify_keys_of(ours))


# --- queries from Synapse to us ---------------------------------------------------------------


def test_synapse_user_reads_palisade_profile(synapse, palisade_peer):
    """Synapse asks us over federation (GET /query/profile, signed with X-Matrix) and passes
    our answer to its user. Spec: server-server API "Query information" (profile)."""
    bob = palisade_peer.register("bob", PASSWORD)
    bob.put(profile_path(bob.user_id) + "/displayname", {"displayname": "Bob of Palisade"})
    alice = synapse.client(synapse.register_user("alice", PASSWORD))

    profile = alice.get(profile_path(bob.user_id))
    assert profile.get("displayname") == "Bob of Palisade"
    assert alice.get(profile_path(bob.user_id) + "/displayname") == \
        {"displayname": "Bob of Palisade"}

    # A change reaches later lookups (polled: Synapse may briefly cache a remote profile).
    bob.put(profile_path(bob.user_id) + "/displayname", {"displayname": "Robert"})
    profile = poll(lambda: alice.get(profile_path(bob.user_id)),
                   lambda p: p.get("displayname") == "Robert")
    assert profile.get("displayname") == "Robert"


def test_synapse_user_gets_not_found_for_unknown_palisade_user(synapse, palisade_peer):
    alice = synapse.client(synapse.register_user("carol", PASSWORD))
    ghost = f"@nobody-here:{palisade_peer.server_name}"
    r = alice.get(profile_path(ghost), expect=None)
    assert r.status_code == 404, r.text
    assert r.json()["errcode"] == "M_NOT_FOUND"


def test_synapse_user_resolves_palisade_room_alias(synapse, palisade_peer):
    """Spec: server-server API "Query information" (directory); client-server API
    GET /directory/room/{roomAlias} on a remote alias."""
    dana = palisade_peer.register("dana", PASSWORD)
    room_id = dana.post("/_matrix/client/v3/createRoom",
                        {"room_alias_name": "interop-lobby", "preset": "public_chat"})["room_id"]
    alias = f"#interop-lobby:{palisade_peer.server_name}"
    alice = synapse.client(synapse.register_user("erin", PASSWORD))

    answer = alice.get(f"/_matrix/client/v3/directory/room/{quote(alias, safe='')}")
    assert answer["room_id"] == room_id
    assert palisade_peer.server_name in answer["servers"]

    missing = f"#no-such-room:{palisade_peer.server_name}"
    r = alice.get(f"/_matrix/client/v3/directory/room/{quote(missing, safe='')}", expect=None)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")


# --- an end-to-end encrypted conversation across the federation -------------------------------

MEGOLM = "m.megolm.v1.aes-sha2"


async def nio_device(base_url: str, user_id: str, store: Path, name: str) -> nio.AsyncClient:
    """A real Matrix client (matrix-nio, vodozemac Olm/Megolm) logged in with fresh keys."""
    store.mkdir()
    config = nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False)
    client = nio.AsyncClient(base_url, user_id, store_path=str(store), config=config)
    resp = await client.login(PASSWORD, device_name=name)
    assert isinstance(resp, nio.LoginResponse), resp
    uploaded = await client.keys_upload()
    assert isinstance(uploaded, nio.KeysUploadResponse), uploaded
    return client


async def nio_sync_until(client: nio.AsyncClient, pred, timeout: float = 90.0):
    """Sync (keeping keys fresh, as a client's sync loop does) until pred(resp) is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = await client.sync(timeout=1000)
        assert isinstance(resp, nio.SyncResponse), resp
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        found = pred(resp)
        if found:
            return found
    raise AssertionError(f"{client.user_id}/{client.device_id}: condition not met in {timeout}s")


async def nio_decrypted(client: nio.AsyncClient, room_id: str, event_id: str) -> str:
    seen: dict = {}

    def pred(resp: nio.SyncResponse):
        room = resp.rooms.join.get(room_id)
        for ev in room.timeline.events if room else []:
            if ev.event_id == event_id:
                seen["event"] = ev
        ev = seen.get("event")
        if isinstance(ev, nio.MegolmEvent):  # the room key may arrive a sync after the event
            try:
                ev = seen["event"] = client.decrypt_event(ev)
            except nio.EncryptionError:
                return None
        return ev if isinstance(ev, nio.RoomMessageText) else None

    event = await nio_sync_until(client, pred)
    assert event.decrypted
    return event.body


async def nio_send(client: nio.AsyncClient, room_id: str, body: str) -> str:
    if client.should_query_keys:
        await client.keys_query()
    resp = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body},
                                  ignore_unverified_devices=True)
    assert isinstance(resp, nio.RoomSendResponse), resp
    return resp.event_id


@pytest.mark.parametrize("host", ["synapse", "palisade"])
async def test_encrypted_conversation_between_synapse_and_palisade_users(
        synapse, palisade_peer, tmp_path, host):
    """Alice (Synapse) and Bob (Palisade), each with a real E2EE client, share a Megolm room
    created on `host`: the other is invited and joins over federation, device keys are queried
    and one-time keys claimed across the servers, room keys travel as Olm-encrypted to-device
    messages, and each side decrypts the other's messages to the exact text. Palisade holds
    only ciphertext. Spec: client-server API "End-to-end encryption"; server-server API
    "End-to-End Encryption", "Send-to-device messaging", "Joining Rooms", "Inviting to a room"."""
    alice_id = (await asyncio.to_thread(synapse.register_user, f"alice-e2ee-{host}",
                                        PASSWORD))["user_id"]
    bob_id = (await asyncio.to_thread(palisade_peer.register, f"bob-e2ee-{host}",
                                      PASSWORD)).user_id
    alice = await nio_device(synapse.base_url, alice_id, tmp_path / "alice", "alice-laptop")
    bob = await nio_device(palisade_peer.base_url, bob_id, tmp_path / "bob", "bob-phone")
    creator, guest = (alice, bob) if host == "synapse" else (bob, alice)
    try:
        created = await creator.room_create(
            name=f"Ward 7 on {host} (encrypted)", invite=[guest.user_id],
            initial_state=[{"type": "m.room.encryption", "state_key": "",
                            "content": {"algorithm": MEGOLM}}])
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id

        await nio_sync_until(guest, lambda r: room_id in r.rooms.invite)
        joined = await guest.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined
        await nio_sync_until(guest, lambda r: room_id in r.rooms.join)
        await nio_sync_until(creator, lambda r: room_id in creator.rooms
                             and guest.user_id in creator.rooms[room_id].users)

        first = await nio_send(alice, room_id, "BP 120/80, no allergies (from Synapse)")
        assert await nio_decrypted(bob, room_id, first) == \
            "BP 120/80, no allergies (from Synapse)"

        reply = await nio_send(bob, room_id, "Acknowledged, from Palisade")
        assert await nio_decrypted(alice, room_id, reply) == "Acknowledged, from Palisade"

        # Palisade stored and serves the event as ciphertext only.
        raw = await asyncio.to_thread(
            httpx.get, f"{palisade_peer.base_url}/_matrix/client/v3/rooms/{quote(room_id)}"
                       f"/event/{quote(first)}",
            headers={"Authorization": f"Bearer {bob.access_token}"}, timeout=30)
        assert raw.status_code == 200, raw.text
        assert raw.json()["type"] == "m.room.encrypted"
        assert raw.json()["content"]["algorithm"] == MEGOLM
        assert "allergies" not in raw.text
    finally:
        await alice.close()
        await bob.close()


# --- redactions and membership sanctions across the federation --------------------------------

C = "/_matrix/client/v3"


def q(s: str) -> str:
    return quote(s, safe="")


def shared_public_room(synapse_user, palisade_user, synapse_server_name: str) -> str:
    """A public room on Synapse that the Palisade user joined over federation."""
    room_id = synapse_user.post(C + "/createRoom", {"preset": "public_chat"})["room_id"]
    palisade_user.post(C + f"/join/{q(room_id)}", params={"server_name": synapse_server_name})
    joined = poll(lambda: synapse_user.get(C + f"/rooms/{q(room_id)}/joined_members")["joined"],
                  lambda members: palisade_user.user_id in members)
    assert palisade_user.user_id in joined
    return room_id


def event_on(client, room_id: str, event_id: str):
    r = client.get(C + f"/rooms/{q(room_id)}/event/{q(event_id)}", expect=None)
    return r.json() if r.status_code == 200 else None


def membership_of(client, room_id: str, user_id: str) -> str | None:
    r = client.get(C + f"/rooms/{q(room_id)}/state/m.room.member/{q(user_id)}", expect=None)
    return r.json().get("membership") if r.status_code == 200 else None


def test_redactions_cross_both_ways(synapse, palisade_peer):
    """A redaction made on either server strips the event's content on the other.
    Spec: client-server API "Redactions"; rooms v11 "Redactions" (the redaction algorithm)."""
    sam = synapse.client(synapse.register_user("sam-redact", PASSWORD))
    fay = palisade_peer.register("fay-redact", PASSWORD)
    room_id = shared_public_room(sam, fay, synapse.server_name)

    from_synapse = sam.put(C + f"/rooms/{q(room_id)}/send/m.room.message/r1",
                           {"msgtype": "m.text", "body": "wrong ward number"})["event_id"]
    seen = poll(lambda: event_on(fay, room_id, from_synapse), lambda ev: ev is not None)
    assert seen and seen["content"]["body"] == "wrong ward number"
    sam.put(C + f"/rooms/{q(room_id)}/redact/{q(from_synapse)}/x1", {"reason": "typo"})
    redacted = poll(lambda: event_on(fay, room_id, from_synapse),
                    lambda ev: ev is not None and ev["content"] == {})
    assert redacted is not None and redacted["content"] == {}, redacted
    assert redacted["unsigned"]["redacted_because"]["sender"] == sam.user_id

    from_palisade = fay.put(C + f"/rooms/{q(room_id)}/send/m.room.message/r2",
                            {"msgtype": "m.text", "body": "sent to the wrong room"})["event_id"]
    seen = poll(lambda: event_on(sam, room_id, from_palisade), lambda ev: ev is not None)
    assert seen and seen["content"]["body"] == "sent to the wrong room"
    fay.put(C + f"/rooms/{q(room_id)}/redact/{q(from_palisade)}/x2", {})
    redacted = poll(lambda: event_on(sam, room_id, from_palisade),
                    lambda ev: ev is not None and ev["content"] == {})
    assert redacted is not None and redacted["content"] == {}, redacted
    # And on Palisade itself.
    assert event_on(fay, room_id, from_palisade)["content"] == {}


def test_kick_and_ban_by_synapse_room_admin(synapse, palisade_peer):
    """Spec: client-server API "Room membership" (kick, ban); server-server API
    "Joining Rooms" (a banned user's server is refused make_join)."""
    sam = synapse.client(synapse.register_user("sam-mod", PASSWORD))
    fay = palisade_peer.register("fay-mod", PASSWORD)
    room_id = shared_public_room(sam, fay, synapse.server_name)

    sam.post(C + f"/rooms/{q(room_id)}/kick", {"user_id": fay.user_id, "reason": "test"})
    assert poll(lambda: membership_of(fay, room_id, fay.user_id),
                lambda m: m == "leave") == "leave"
    poll(lambda: fay.get(C + "/joined_rooms")["joined_rooms"], lambda r: room_id not in r)
    assert room_id not in fay.get(C + "/joined_rooms")["joined_rooms"]

    # A kick is not a ban: the room is public, she can come back.
    fay.post(C + f"/join/{q(room_id)}", params={"server_name": synapse.server_name})
    assert poll(lambda: membership_of(sam, room_id, fay.user_id),
                lambda m: m == "join") == "join"

    sam.post(C + f"/rooms/{q(room_id)}/ban", {"user_id": fay.user_id, "reason": "test"})
    assert poll(lambda: membership_of(fay, room_id, fay.user_id),
                lambda m: m == "ban") == "ban"
    r = fay.post(C + f"/join/{q(room_id)}", params={"server_name": synapse.server_name},
                 expect=None)
    assert r.status_code == 403, r.text
    assert r.json()["errcode"] == "M_FORBIDDEN"
    assert room_id not in fay.get(C + "/joined_rooms")["joined_rooms"]
    assert membership_of(sam, room_id, fay.user_id) == "ban"


# --- the federation allow-list against a real peer -------------------------------------------


def test_allow_list_shuts_synapse_out_in_both_directions(synapse, tmp_path):
    """A Palisade whose allow-list leaves the Synapse out: the Synapse's requests are refused
    before anything is read, Palisade never connects to it, every refusal is audited, and
    nothing crosses. Compliance: A_25534, AF_10064 (only listed domains, either direction)."""
    closed = start_palisade_peer(tmp_path, federation={"allow_list": ["partner.invalid:8448"]})
    try:
        ivy = closed.register("ivy", PASSWORD)
        ivy.put(profile_path(ivy.user_id) + "/displayname", {"displayname": "Ivy"})
        sam = synapse.client(synapse.register_user("sam-shut-out", PASSWORD))

        # Inbound: the Synapse asks for Ivy's profile on behalf of its user; we answer 403.
        r = sam.get(profile_path(ivy.user_id), expect=None)
        assert r.status_code == 403, r.text
        assert "Ivy" not in r.text
        # Outbound: refused at our side, before any connection.
        r = ivy.get(profile_path(sam.user_id), expect=None)
        assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
        ward = ivy.post(C + "/createRoom", {"preset": "private_chat"})["room_id"]
        r = ivy.post(C + f"/rooms/{q(ward)}/invite", {"user_id": sam.user_id}, expect=None)
        assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
        assert membership_of(ivy, ward, sam.user_id) is None
        lobby = sam.post(C + "/createRoom", {"preset": "public_chat"})["room_id"]
        r = ivy.post(C + f"/join/{q(lobby)}", params={"server_name": synapse.server_name},
                     expect=None)
        assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
        assert lobby not in ivy.get(C + "/joined_rooms")["joined_rooms"]
        assert ivy.user_id not in sam.get(C + f"/rooms/{q(lobby)}/joined_members")["joined"]

        # Every refusal is in the audit log, naming the Synapse and the rule.
        denials = closed.audit_records(AuditAction.POLICY_DENIED)
        about_synapse = [(a, t, d) for a, t, d in denials
                         if synapse.server_name in (a, t, d.get("destination"), d.get("origin"))]
        assert about_synapse, denials
        assert {d["rule"] for _, _, d in about_synapse} == {"federation.allow_list"}
        assert any(a == synapse.server_name for a, _, _ in about_synapse), denials  # inbound
        # No request of ours reached the Synapse (its access log names each request's origin).
        assert "{" + closed.server_name + "}" not in synapse.log()
    finally:
        closed.stop()


# --- a waiting /sync and events that arrive over federation ----------------------------------

SYNC_TIMEOUT_MS = 25_000


def test_event_from_synapse_wakes_a_waiting_sync(synapse, palisade_peer):
    """A message sent on Synapse is delivered to a Palisade client's long-polling /sync when it
    arrives, not when the long poll times out. Spec: client-server API "Syncing" (the server
    returns as soon as there are new events, or at `timeout`)."""
    sam = synapse.client(synapse.register_user("sam-wake", PASSWORD))
    fay = palisade_peer.register("fay-wake", PASSWORD)
    room_id = shared_public_room(sam, fay, synapse.server_name)
    since = fay.get(C + "/sync", params={"timeout": 0})["next_batch"]

    def long_poll():
        started = time.monotonic()
        body = fay.request("GET", C + "/sync", expect=None, timeout=SYNC_TIMEOUT_MS / 1000 + 60,
                           params={"since": since, "timeout": SYNC_TIMEOUT_MS}).json()
        return time.monotonic() - started, body

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(long_poll)
        time.sleep(1)  # let the long poll start waiting (if it has not, it returns at once)
        sam.put(C + f"/rooms/{q(room_id)}/send/m.room.message/w1",
                {"msgtype": "m.text", "body": "wake up"})
        elapsed, body = waiting.result(timeout=SYNC_TIMEOUT_MS / 1000 + 60)

    timeline = body.get("rooms", {}).get("join", {}).get(room_id, {}).get("timeline", {})
    bodies = [e["content"].get("body") for e in timeline.get("events", [])]
    # Woken by the event: well before the timeout (generous: the machine may be loaded).
    assert elapsed < SYNC_TIMEOUT_MS / 1000 - 10, f"/sync returned after {elapsed:.1f}s"
    assert "wake up" in bodies, body
