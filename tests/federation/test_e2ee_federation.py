"""E2EE over federation: the endpoints we serve (GET /user/devices, POST /user/keys/query and
/user/keys/claim, with signed requests), and our clients' /keys/query, /keys/claim, profile and
alias lookups for users of other servers, between two live Palisade servers and against a real
Synapse (tests/federation/synapse.py)."""

from __future__ import annotations

import base64
import time
from urllib.parse import quote, unquote

import canonicaljson
import httpx
import nacl.signing
import orjson
import pytest
from django.test import AsyncClient

from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.signing import public_key_base64, sign_json
from homeserver.storage.server_keys import StoredKey, store_key
from tests.accounts.conftest import amake_user
from tests.e2ee.clientkeys import ClientDevice, login_device, upload
from tests.e2ee.test_cross_signing import Identity, publish
from tests.federation.synapse import (
    ClientAPI,
    MatrixUser,
    synapse_fixture,  # noqa: F401 - fixture synapse
)
from tests.federation.test_inbound_auth import KEY, REMOTE, signed_get

F = "/_matrix/federation/v1"


async def fed(method: str, path: str, body=None, *, signed: bool = True):
    # Django's test client hands the view the decoded path (no raw_path): sign what it sees.
    headers = (signed_get(unquote(path), method=method, content=body)["headers"]
               if signed else {})
    client = AsyncClient()
    if method == "GET":
        return await client.get(path, headers=headers)
    return await client.post(path, data=orjson.dumps(body) if body is not None else b"",
                             content_type="application/json", headers=headers)


def devices_path(user_id: str) -> str:
    return f"{F}/user/devices/{quote(user_id, safe='')}"


# --- serving other servers (in-process, signed requests) -----------------------------------------

@pytest.fixture
def remote_key():
    """As if we had fetched remote.example's keys before (its key server is not running)."""
    doc = sign_json({"server_name": REMOTE, "valid_until_ts": int(time.time() * 1000) + 3600_000,
                     "verify_keys": {KEY.key_id: {"key": public_key_base64(KEY)}}}, REMOTE, KEY)
    store_key(StoredKey(REMOTE, KEY.key_id, public_key_base64(KEY), doc["valid_until_ts"], None,
                        encode_canonical_json(doc).decode()), 0)


def inproc(test):
    return pytest.mark.django_db(transaction=True)(pytest.mark.usefixtures("remote_key")(test))


@inproc
async def test_user_devices_lists_devices_keys_and_cross_signing(api):
    user = await amake_user()
    r = await api.login(user, initial_device_display_name="Work phone")
    phone = ClientDevice(user, r["device_id"], r["access_token"])
    idle = await login_device(api, user)
    await upload(api, phone, {"device_keys": phone.device_keys()})
    ident = Identity(user)
    await publish(api, phone, ident)
    r = await fed("GET", devices_path(user))
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["user_id"] == user
    by_id = {d["device_id"]: d for d in body["devices"]}
    assert set(by_id) == {phone.device_id, idle.device_id}
    assert by_id[phone.device_id]["keys"] == phone.device_keys()
    assert by_id[phone.device_id]["device_display_name"] == "Work phone"
    assert "keys" not in by_id[idle.device_id]
    assert body["master_key"] == ident.upload_body()["master_key"]
    assert body["self_signing_key"] == ident.upload_body()["self_signing_key"]
    assert "user_signing_key" not in body   # private to its owner
    # stream_id moves with every device change (the m.device_list_update sequence).
    before = body["stream_id"]
    assert before >= 3  # two logins and one key upload
    await login_device(api, user)
    assert (await fed("GET", devices_path(user))).json()["stream_id"] == before + 1


@inproc
async def test_user_devices_refuses_other_servers_users_and_unsigned_requests(api):
    r = await fed("GET", devices_path("@carol:elsewhere.example"))
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = await fed("GET", devices_path("not-a-user"))
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    user = await amake_user()
    r = await fed("GET", devices_path(user), signed=False)
    assert (r.status_code, r.json()["errcode"]) == (401, "M_UNAUTHORIZED")


@inproc
async def test_keys_query_answers_local_users_only(api):
    bob = await login_device(api, await amake_user())
    await upload(api, bob, {"device_keys": bob.device_keys()})
    ident = Identity(bob.user_id)
    await publish(api, bob, ident)
    body = {"device_keys": {bob.user_id: [], "@carol:elsewhere.example": []}}
    r = await fed("POST", f"{F}/user/keys/query", body)
    assert r.status_code == 200, r.json()
    got = r.json()
    assert set(got["device_keys"]) == {bob.user_id}
    assert got["device_keys"][bob.user_id][bob.device_id]["keys"] == bob.device_keys()["keys"]
    assert got["master_keys"][bob.user_id] == ident.upload_body()["master_key"]
    assert "user_signing_keys" not in got and "failures" not in got
    # Only the named devices.
    r = await fed("POST", f"{F}/user/keys/query", {"device_keys": {bob.user_id: ["NOPE"]}})
    assert r.json()["device_keys"] == {bob.user_id: {}}


@inproc
async def test_keys_claim_hands_out_each_key_once(api):
    bob = await login_device(api, await amake_user())
    otks = bob.one_time_keys(2)
    await upload(api, bob, {"device_keys": bob.device_keys(), "one_time_keys": otks})
    body = {"one_time_keys": {bob.user_id: {bob.device_id: "signed_curve25519"},
                              "@carol:elsewhere.example": {"D": "signed_curve25519"}}}
    seen = []
    for _ in range(3):
        r = await fed("POST", f"{F}/user/keys/claim", body)
        assert r.status_code == 200, r.json()
        claimed = r.json()["one_time_keys"]
        assert set(claimed) <= {bob.user_id}
        seen.append(claimed.get(bob.user_id, {}).get(bob.device_id))
    assert [s for s in seen[:2]] == [{k: v} for k, v in otks.items()]
    assert seen[2] is None   # used up, no fallback key


@inproc
@pytest.mark.parametrize("path,body,status,errcode", [
    ("user/keys/query", {}, 400, "M_BAD_JSON"),
    ("user/keys/query", {"device_keys": []}, 400, "M_BAD_JSON"),
    ("user/keys/query", {"device_keys": {"nobody": []}}, 400, "M_INVALID_PARAM"),
    ("user/keys/query", {"device_keys": {"@a:test": "DEV"}}, 400, "M_BAD_JSON"),
    ("user/keys/claim", {"one_time_keys": {"@a:test": ["DEV"]}}, 400, "M_BAD_JSON"),
    ("user/keys/claim", [], 400, "M_NOT_JSON"),
    ("user/keys/claim", None, 400, "M_NOT_JSON"),
])
async def test_bad_requests_get_matrix_errors(api, path, body, status, errcode):
    user = await amake_user()
    local = user.split(":", 1)[1]
    body = orjson.loads(orjson.dumps(body).replace(b"@a:test", f"@a:{local}".encode()))
    r = await fed("POST", f"{F}/{path}", body)
    assert (r.status_code, r.json()["errcode"]) == (status, errcode)


# --- live: two Palisade servers, and a real Synapse ----------------------------------------------

PASSWORD = "a long and proper password"
V3 = "/_matrix/client/v3"
UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1: connection refused


def poll(fetch, until, timeout: float = 60.0, interval: float = 0.3):
    """fetch() until until(result) holds; the last result otherwise (for the assertion)."""
    deadline = time.monotonic() + timeout
    result = fetch()
    while not until(result) and time.monotonic() < deadline:
        time.sleep(interval)
        result = fetch()
    return result


def verify_by_device(obj: dict, user_id: str, device_id: str, ed25519: str) -> None:
    """The signature a client checks (spec "Signing JSON"), with PyNaCl, not our code."""
    signed = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    sig = obj["signatures"][user_id][f"ed25519:{device_id}"]
    nacl.signing.VerifyKey(base64.b64decode(ed25519 + "=" * (-len(ed25519) % 4))).verify(
        canonicaljson.encode_canonical_json(signed),
        base64.b64decode(sig + "=" * (-len(sig) % 4)))


class LiveDevice:
    """A registered user on a live server with a device that holds real keys."""

    def __init__(self, api, user) -> None:
        self.api = api
        self.keys = ClientDevice(user.user_id, user.device_id, user.access_token)

    @property
    def user_id(self) -> str:
        return self.keys.user_id

    def upload(self, n_otks: int = 2) -> dict:
        otks = self.keys.one_time_keys(n_otks)
        self.api.post(V3 + "/keys/upload", {"device_keys": self.keys.device_keys(),
                                            "one_time_keys": otks})
        return otks

    def query(self, users: dict, timeout: int = 10000) -> dict:
        return self.api.post(V3 + "/keys/query", {"device_keys": users, "timeout": timeout})

    def claim(self, users: dict) -> dict:
        return self.api.post(V3 + "/keys/claim", {"one_time_keys": users})


def unique(prefix: str) -> str:
    return f"{prefix}{time.monotonic_ns() % 10**9}"


@pytest.fixture(scope="module")
def palisades(tmp_path_factory):
    from tests.federation.peers import start_palisade_peer

    a = start_palisade_peer(tmp_path_factory.mktemp("palisade-a"))
    try:
        b = start_palisade_peer(tmp_path_factory.mktemp("palisade-b"))
    except BaseException:
        a.stop()
        raise
    yield a, b
    b.stop()
    a.stop()


def live_device(server, localpart: str) -> LiveDevice:
    api = server.register(unique(localpart), PASSWORD)
    return LiveDevice(api, api.user)


def check_query_and_claim(asker: LiveDevice, owner: LiveDevice, otks: dict) -> None:
    """What a client on one server gets of a device on another: its signed keys, then its
    one-time keys, each once."""
    got = asker.query({owner.user_id: []})
    assert got["failures"] == {}
    device = got["device_keys"][owner.user_id][owner.keys.device_id]
    assert device["keys"] == owner.keys.device_keys()["keys"]
    verify_by_device(device, owner.user_id, owner.keys.device_id, owner.keys.ed25519_public)
    want = {owner.user_id: {owner.keys.device_id: "signed_curve25519"}}
    claimed = [asker.claim(want) for _ in range(2)]
    keys = [c["one_time_keys"][owner.user_id][owner.keys.device_id] for c in claimed]
    assert all(c["failures"] == {} for c in claimed)
    assert keys[0] != keys[1]
    assert {**keys[0], **keys[1]} == otks
    for k in keys:
        (obj,) = k.values()
        verify_by_device(obj, owner.user_id, owner.keys.device_id, owner.keys.ed25519_public)


@pytest.mark.live
def test_keys_query_and_claim_between_two_palisades(palisades):
    a, b = palisades
    alice, bob = live_device(a, "alice"), live_device(b, "bob")
    otks = bob.upload(2)
    check_query_and_claim(alice, bob, otks)
    # An unreachable server is a failure of its own; the reachable one still answers.
    got = alice.query({bob.user_id: [], f"@x:{UNREACHABLE}": []}, timeout=5000)
    assert set(got["failures"]) == {UNREACHABLE}
    assert bob.keys.device_id in got["device_keys"][bob.user_id]
    got = alice.claim({f"@x:{UNREACHABLE}": {"D": "signed_curve25519"}})
    assert set(got["failures"]) == {UNREACHABLE} and got["one_time_keys"] == {}


@pytest.mark.live
def test_profile_and_alias_lookups_between_two_palisades(palisades):
    a, b = palisades
    alice, bob = a.register(unique("alice"), PASSWORD), b.register(unique("bob"), PASSWORD)
    profile = f"{V3}/profile/{quote(bob.user_id, safe='')}"
    bob.put(profile + "/displayname", {"displayname": "Bob of B"})
    assert alice.get(profile) == {"displayname": "Bob of B"}
    assert alice.get(profile + "/displayname") == {"displayname": "Bob of B"}
    assert alice.get(profile + "/avatar_url") == {}
    for ghost in (f"@ghost:{b.server_name}", f"@x:{UNREACHABLE}"):
        r = alice.get(f"{V3}/profile/{quote(ghost, safe='')}", expect=None)
        assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND"), r.text
    name = unique("lobby")
    room_id = bob.post(V3 + "/createRoom", {"room_alias_name": name})["room_id"]
    alias = f"#{name}:{b.server_name}"
    answer = alice.get(f"{V3}/directory/room/{quote(alias, safe='')}")
    assert answer["room_id"] == room_id and b.server_name in answer["servers"]
    for missing in (f"#nope:{b.server_name}", f"#x:{UNREACHABLE}"):
        r = alice.get(f"{V3}/directory/room/{quote(missing, safe='')}", expect=None)
        assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND"), r.text


def sync(api, since: str | None = None) -> dict:
    return api.get(V3 + "/sync", params={"timeout": 0, **({"since": since} if since else {})})


def sync_until(api, since: str | None, until, timeout: float = 60.0) -> dict:
    """Sync forward until `until(response)` holds for one response; that response."""
    deadline = time.monotonic() + timeout
    while True:
        resp = api.get(V3 + "/sync", params={"timeout": 2000, **({"since": since} if since else {})})
        if until(resp) or time.monotonic() > deadline:
            return resp
        since = resp["next_batch"]


def joined_room_members(api, room_id: str) -> set[str]:
    return set(api.get(f"{V3}/rooms/{quote(room_id, safe='')}/joined_members")["joined"])


@pytest.mark.live
def test_edus_flow_between_two_palisades_sharing_a_room(palisades):
    """Typing, receipts, to-device and device-list updates travel as EDUs (queued by the
    sender's outbox, applied by the receiver's handle_edu) once both servers share a room."""
    a, b = palisades
    alice, bob = live_device(a, "alice"), live_device(b, "bob")
    room_id = alice.api.post(V3 + "/createRoom", {"preset": "public_chat"})["room_id"]
    bob.api.post(f"{V3}/join/{quote(room_id, safe='')}", {},
                 params={"server_name": a.server_name})
    members = poll(lambda: joined_room_members(alice.api, room_id), lambda m: bob.user_id in m)
    assert bob.user_id in members
    since = sync(alice.api)["next_batch"]
    bob_since = sync(bob.api)["next_batch"]

    def typing_users(resp: dict) -> list[str]:
        room = resp["rooms"]["join"].get(room_id, {})
        return [u for e in room.get("ephemeral", {}).get("events", [])
                if e["type"] == "m.typing" for u in e["content"]["user_ids"]]

    bob.api.put(f"{V3}/rooms/{quote(room_id, safe='')}/typing/{quote(bob.user_id, safe='')}",
                {"typing": True, "timeout": 30000})
    resp = sync_until(alice.api, since, lambda r: bob.user_id in typing_users(r))
    assert bob.user_id in typing_users(resp)

    # A to-device message from alice (A) to bob's device (B).
    alice.api.put(f"{V3}/sendToDevice/m.test/{unique('txn')}",
                  {"messages": {bob.user_id: {bob.keys.device_id: {"hello": "bob"}}}})
    resp = sync_until(bob.api, bob_since, lambda r: r["to_device"]["events"])
    assert resp["to_device"]["events"] == [
        {"sender": alice.user_id, "type": "m.test", "content": {"hello": "bob"}}]

    # Bob's keys: alice's server caches his device list; a new device reaches it as an update.
    bob.upload(1)
    poll(lambda: alice.query({bob.user_id: []}),
         lambda g: bob.keys.device_id in g["device_keys"].get(bob.user_id, {}))
    since = sync(alice.api)["next_batch"]
    login = httpx.post(b.base_url + V3 + "/login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": bob.user_id},
        "password": PASSWORD}, timeout=30).json()
    resp = sync_until(alice.api, since, lambda r: bob.user_id in r["device_lists"]["changed"])
    assert bob.user_id in resp["device_lists"]["changed"]
    got = alice.query({bob.user_id: []})
    assert got["failures"] == {}
    # The new device has no keys yet, so it is not listed; its arrival was announced.
    assert login["device_id"] not in got["device_keys"][bob.user_id]
    assert bob.keys.device_id in got["device_keys"][bob.user_id]
    # Once the new device uploads keys, the update carries them to alice's server.
    user = MatrixUser(bob.user_id, login["access_token"], login["device_id"])
    new = LiveDevice(ClientAPI(b.base_url, user), user)
    new.upload(1)
    got = poll(lambda: alice.query({bob.user_id: []}),
               lambda g: login["device_id"] in g["device_keys"].get(bob.user_id, {}))
    device = got["device_keys"][bob.user_id][login["device_id"]]
    verify_by_device(device, bob.user_id, login["device_id"], new.keys.ed25519_public)


# --- with a real Synapse --------------------------------------------------------------------------


def synapse_device(synapse, localpart: str) -> LiveDevice:
    api = synapse.client(synapse.register_user(unique(localpart), PASSWORD))
    return LiveDevice(api, api.user)


@pytest.mark.live
def test_synapse_user_queries_and_claims_keys_of_a_palisade_user(synapse, palisades):
    palisade, _ = palisades
    bob = live_device(palisade, "bob")
    otks = bob.upload(2)
    check_query_and_claim(synapse_device(synapse, "alice"), bob, otks)


@pytest.mark.live
def test_palisade_user_queries_and_claims_keys_of_a_synapse_user(synapse, palisades):
    palisade, _ = palisades
    carol = synapse_device(synapse, "carol")
    otks = carol.upload(2)
    check_query_and_claim(live_device(palisade, "alice"), carol, otks)


@pytest.mark.live
def test_palisade_user_reads_synapse_profile_and_alias(synapse, palisades):
    palisade, _ = palisades
    alice = palisade.register(unique("alice"), PASSWORD)
    carol = synapse.client(synapse.register_user(unique("carol"), PASSWORD))
    profile = f"{V3}/profile/{quote(carol.user_id, safe='')}"
    carol.put(profile + "/displayname", {"displayname": "Carol of Synapse"})
    assert alice.get(profile).get("displayname") == "Carol of Synapse"
    assert alice.get(profile + "/displayname") == {"displayname": "Carol of Synapse"}
    r = alice.get(f"{V3}/profile/{quote('@ghost:' + synapse.server_name, safe='')}", expect=None)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND"), r.text
    name = unique("hall")
    room_id = carol.post(V3 + "/createRoom", {"room_alias_name": name})["room_id"]
    answer = alice.get(f"{V3}/directory/room/{quote(f'#{name}:{synapse.server_name}', safe='')}")
    assert answer["room_id"] == room_id and synapse.server_name in answer["servers"]


def typing_in(resp: dict, room_id: str) -> list[str]:
    room = resp.get("rooms", {}).get("join", {}).get(room_id, {})
    return [u for e in room.get("ephemeral", {}).get("events", [])
            if e["type"] == "m.typing" for u in e["content"]["user_ids"]]


@pytest.mark.live
def test_edus_between_synapse_and_palisade_in_a_shared_room(synapse, palisades):
    """Typing both ways, to-device both ways, and a Palisade user's new device reaching a
    Synapse user's key query through m.device_list_update (Synapse checks stream_id/prev_id)."""
    palisade, _ = palisades
    carol = synapse_device(synapse, "carol")
    bob = live_device(palisade, "bob")
    bob.upload(1)
    room_id = carol.api.post(V3 + "/createRoom", {"preset": "public_chat"})["room_id"]
    bob.api.post(f"{V3}/join/{quote(room_id, safe='')}", {},
                 params={"server_name": synapse.server_name})
    poll(lambda: joined_room_members(carol.api, room_id), lambda m: bob.user_id in m)
    # Synapse starts tracking bob's devices (GET /user/devices on us).
    got = poll(lambda: carol.query({bob.user_id: []}),
               lambda g: bob.keys.device_id in g["device_keys"].get(bob.user_id, {}))
    assert bob.keys.device_id in got["device_keys"][bob.user_id]
    carol_since, bob_since = sync(carol.api)["next_batch"], sync(bob.api)["next_batch"]
    room = quote(room_id, safe="")

    carol.api.put(f"{V3}/rooms/{room}/typing/{quote(carol.user_id, safe='')}",
                  {"typing": True, "timeout": 30000})
    resp = sync_until(bob.api, bob_since, lambda r: carol.user_id in typing_in(r, room_id))
    assert carol.user_id in typing_in(resp, room_id)
    bob.api.put(f"{V3}/rooms/{room}/typing/{quote(bob.user_id, safe='')}",
                {"typing": True, "timeout": 30000})
    resp = sync_until(carol.api, carol_since, lambda r: bob.user_id in typing_in(r, room_id))
    assert bob.user_id in typing_in(resp, room_id)

    carol.api.put(f"{V3}/sendToDevice/m.test/{unique('t')}",
                  {"messages": {bob.user_id: {bob.keys.device_id: {"from": "synapse"}}}})
    resp = sync_until(bob.api, bob_since, lambda r: r["to_device"]["events"])
    assert resp["to_device"]["events"] == [
        {"sender": carol.user_id, "type": "m.test", "content": {"from": "synapse"}}]
    bob.api.put(f"{V3}/sendToDevice/m.test/{unique('t')}",
                {"messages": {carol.user_id: {"*": {"from": "palisade"}}}})
    resp = sync_until(carol.api, carol_since,
                      lambda r: r.get("to_device", {}).get("events"))
    assert [(e["sender"], e["content"]) for e in resp["to_device"]["events"]] == [
        (bob.user_id, {"from": "palisade"})]

    login = httpx.post(palisade.base_url + V3 + "/login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": bob.user_id},
        "password": PASSWORD}, timeout=30).json()
    user = MatrixUser(bob.user_id, login["access_token"], login["device_id"])
    new = LiveDevice(ClientAPI(palisade.base_url, user), user)
    new.upload(1)
    got = poll(lambda: carol.query({bob.user_id: []}),
               lambda g: login["device_id"] in g["device_keys"].get(bob.user_id, {}))
    device = got["device_keys"][bob.user_id][login["device_id"]]
    verify_by_device(device, bob.user_id, login["device_id"], new.keys.ed25519_public)


@inproc
async def test_servers_off_the_allow_list_are_never_asked(api, settings):
    from tests.accounts.conftest import configure

    configure(settings, federation={"allow_list": ("friend.example",)})
    alice = await login_device(api, await amake_user())
    blocked = "blocked.example"
    r = await api.call("GET", f"/profile/{quote('@bob:' + blocked, safe='')}", token=alice.token)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = await api.call("GET", f"/directory/room/{quote('#room:' + blocked, safe='')}")
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = await api.call("POST", "/keys/query", {"device_keys": {f"@bob:{blocked}": []}},
                       token=alice.token)
    assert r.status_code == 200
    assert r.json()["failures"][blocked]["status"] == 403
    r = await api.call("POST", "/keys/claim", {"one_time_keys": {
        f"@bob:{blocked}": {"D": "signed_curve25519"}}}, token=alice.token)
    assert r.json()["failures"][blocked]["status"] == 403


def receipts_in(resp: dict, room_id: str) -> dict:
    room = resp.get("rooms", {}).get("join", {}).get(room_id, {})
    out: dict = {}
    for e in room.get("ephemeral", {}).get("events", []):
        if e["type"] == "m.receipt":
            for event_id, by_type in e["content"].items():
                for user_id in by_type.get("m.read", {}):
                    out[user_id] = event_id
    return out


def send_text(api, room_id: str, body: str) -> str:
    return api.put(f"{V3}/rooms/{quote(room_id, safe='')}/send/m.room.message/{unique('m')}",
                   {"msgtype": "m.text", "body": body})["event_id"]


@pytest.mark.live
def test_receipts_and_cross_signing_between_synapse_and_palisade(synapse, palisades):
    palisade, _ = palisades
    carol = synapse_device(synapse, "carol")
    bob = live_device(palisade, "bob")
    bob.upload(1)
    room_id = carol.api.post(V3 + "/createRoom", {"preset": "public_chat"})["room_id"]
    bob.api.post(f"{V3}/join/{quote(room_id, safe='')}", {},
                 params={"server_name": synapse.server_name})
    poll(lambda: joined_room_members(carol.api, room_id), lambda m: bob.user_id in m)
    room = quote(room_id, safe="")
    # Read receipts both ways (on an event each side has).
    from_carol = send_text(carol.api, room_id, "hello from synapse")
    poll(lambda: bob.api.get(f"{V3}/rooms/{room}/event/{quote(from_carol, safe='')}",
                             expect=None).status_code, lambda s: s == 200)
    carol_since, bob_since = sync(carol.api)["next_batch"], sync(bob.api)["next_batch"]
    carol.api.post(f"{V3}/rooms/{room}/receipt/m.read/{quote(from_carol, safe='')}", {})
    resp = sync_until(bob.api, bob_since, lambda r: carol.user_id in receipts_in(r, room_id))
    assert receipts_in(resp, room_id).get(carol.user_id) == from_carol
    bob.api.post(f"{V3}/rooms/{room}/receipt/m.read/{quote(from_carol, safe='')}", {})
    resp = sync_until(carol.api, carol_since, lambda r: bob.user_id in receipts_in(r, room_id))
    assert receipts_in(resp, room_id).get(bob.user_id) == from_carol

    # Cross-signing keys published on Palisade reach a Synapse user who already tracks bob's
    # devices (so through m.signing_key_update, not a first fetch).
    got = carol.query({bob.user_id: []})
    assert bob.keys.device_id in got["device_keys"][bob.user_id]
    assert bob.user_id not in got.get("master_keys", {})
    ident = Identity(bob.user_id)
    bob.api.post(V3 + "/keys/device_signing/upload", ident.upload_body())
    got = poll(lambda: carol.query({bob.user_id: []}),
               lambda g: bob.user_id in g.get("master_keys", {}))
    assert got["master_keys"][bob.user_id]["keys"] == ident.upload_body()["master_key"]["keys"]
    assert got["self_signing_keys"][bob.user_id]["keys"] == \
        ident.upload_body()["self_signing_key"]["keys"]
