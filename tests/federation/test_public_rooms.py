"""Public rooms over federation (spec: server-server API "Published Room Directory") and public
rooms staying local under the TI-M and BwMessenger profiles (REQUIREMENTS.md A_26515-01, A_26520,
A_28590): another server can list our directory under `standard`, cannot under TI-M (403,
audited), cannot join a public room created here (m.federate=false), and our users cannot join
public rooms on other servers."""

from __future__ import annotations

import time
from urllib.parse import quote

import orjson
import pytest
from django.conf import settings
from django.test import AsyncClient

from audit.actions import AuditAction
from compliance.hooks import Hook, PolicyDenied, run
from compliance.profiles import ActiveProfile, activate_profile
from homeserver.config import ComplianceSection
from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.signing import generate_signing_key, public_key_base64, sign_json
from homeserver.protocol.xmatrix import authorization_header
from homeserver.storage.server_keys import StoredKey, store_key
from tests.accounts.conftest import aaudit_head, aaudit_since, amake_user, configure

pytestmark = pytest.mark.django_db(transaction=True)

REMOTE = "remote.example:8448"
KEY = generate_signing_key()
PATH = "/_matrix/federation/v1/publicRooms"
ENCRYPTION = {"type": "m.room.encryption", "state_key": "",
              "content": {"algorithm": "m.megolm.v1.aes-sha2"}}


@pytest.fixture(autouse=True)
def remote_key_known():
    """As if we had fetched remote.example's keys before (its key server is not running)."""
    doc = sign_json({"server_name": REMOTE, "valid_until_ts": int(time.time() * 1000) + 3600_000,
                     "verify_keys": {KEY.key_id: {"key": public_key_base64(KEY)}}}, REMOTE, KEY)
    store_key(StoredKey(REMOTE, KEY.key_id, public_key_base64(KEY), doc["valid_until_ts"], None,
                        encode_canonical_json(doc).decode()), 0)


@pytest.fixture
def profile(settings):
    original = (settings.PALISADE.compliance_profile, settings.PALISADE.compliance)

    def use(name: str) -> ActiveProfile:
        configure(settings, compliance_profile=name, compliance=ComplianceSection())
        return activate_profile(name, settings.PALISADE.compliance)

    yield use
    activate_profile(*original)


async def fed(method: str, path: str, body=None, *, signed_path: str | None = None):
    """A request signed by REMOTE; `signed_path` is the decoded form the server checks when the
    path has escapes (Django's test client passes no raw path)."""
    content = orjson.dumps(body) if body is not None else b""
    auth = authorization_header(method, signed_path or path, REMOTE,
                                settings.PALISADE.server_name, body, KEY)
    client = AsyncClient()
    if method == "GET":
        return await client.get(path, headers={"Authorization": auth})
    return await client.generic(method, path, content, content_type="application/json",
                                headers={"Authorization": auth})


async def public_room(api, name: str) -> tuple[str, str]:
    user = await amake_user()
    tok = (await api.login(user))["access_token"]
    r = await api.call("POST", "/createRoom", {"preset": "public_chat", "visibility": "public",
                                               "name": name, "initial_state": [ENCRYPTION]},
                       token=tok)
    assert r.status_code == 200, r.json()
    return r.json()["room_id"], tok


async def test_remote_server_lists_our_directory_under_standard(api, profile):
    profile("standard")
    room, _ = await public_room(api, "Cardiology lounge")
    other, _ = await public_room(api, "Radiology")
    r = await fed("GET", PATH)
    assert r.status_code == 200, r.json()
    chunk = r.json()["chunk"]
    assert {e["room_id"] for e in chunk} == {room, other}
    entry = next(e for e in chunk if e["room_id"] == room)
    assert entry["name"] == "Cardiology lounge" and entry["num_joined_members"] == 1
    assert entry["join_rule"] == "public"
    # Pagination and the POST form with a filter.
    r = await fed("GET", PATH + "?limit=1")
    assert len(r.json()["chunk"]) == 1 and r.json()["next_batch"] == "o1"
    r = await fed("POST", PATH, {"filter": {"generic_search_term": "cardio"}, "limit": 10})
    assert r.status_code == 200, r.json()
    assert [e["room_id"] for e in r.json()["chunk"]] == [room]


@pytest.mark.parametrize(("method", "path", "body", "status", "errcode"), [
    ("GET", PATH + "?limit=ten", None, 400, "M_INVALID_PARAM"),
    ("GET", PATH + "?limit=-1", None, 400, "M_INVALID_PARAM"),
    ("GET", PATH + "?since=bogus", None, 400, "M_INVALID_PARAM"),
    ("GET", PATH + "?include_all_networks=maybe", None, 400, "M_INVALID_PARAM"),
    ("POST", PATH, [1, 2], 400, "M_NOT_JSON"),
    ("POST", PATH, {"limit": "10"}, 400, "M_BAD_JSON"),
    ("POST", PATH, {"filter": {"generic_search_term": 5}}, 400, "M_BAD_JSON"),
])
async def test_bad_requests_get_matrix_errors(api, profile, method, path, body, status,
                                              errcode):
    profile("standard")
    r = await fed(method, path, body)
    assert (r.status_code, r.json()["errcode"]) == (status, errcode), r.json()


async def test_unsigned_request_gets_401(profile):
    profile("standard")
    r = await AsyncClient().get(PATH)
    assert (r.status_code, r.json()["errcode"]) == (401, "M_UNAUTHORIZED")


@pytest.mark.parametrize("name", ["ti-m-pro", "ti-m-basis", "bwmessenger"])
async def test_directory_is_not_served_to_other_servers_under_local_only_profiles(
        api, profile, name):
    profile(name)
    await public_room(api, "Station 3")
    for method, body in (("GET", None), ("POST", {"limit": 5})):
        seq = await aaudit_head()
        r = await fed(method, PATH, body)
        assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
        (rec,) = await aaudit_since(seq)
        assert rec.action == AuditAction.POLICY_DENIED and rec.actor == REMOTE
        details = rec.details_dict
        assert (details["hook"], details["rule"]) == ("federation_request",
                                                      "room_rules.federation_public_rooms")
    # Other federation endpoints are not affected by this rule.
    user = await amake_user()
    path = f"/_matrix/federation/v1/query/profile?user_id={quote(user)}"
    assert (await fed("GET", path)).status_code == 200


async def make_join(room: str):
    remote_user = "@doc:remote.example:8448"
    return await fed("GET", f"/_matrix/federation/v1/make_join/{quote(room)}/"
                            f"{quote(remote_user)}?ver=10",
                     signed_path=f"/_matrix/federation/v1/make_join/{room}/{remote_user}?ver=10")


@pytest.mark.parametrize(("name", "federates"), [("ti-m-pro", False), ("bwmessenger", False),
                                                 ("standard", True)])
async def test_public_room_created_under_tim_cannot_be_joined_from_another_server(
        api, profile, name, federates):
    profile(name)
    room, tok = await public_room(api, "Open ward")
    r = await api.call("GET", f"/rooms/{room}/state/m.room.create", token=tok)
    assert r.json().get("m.federate", True) is federates
    r = await make_join(room)
    if federates:
        assert r.status_code == 200, r.json()
        assert r.json()["event"]["type"] == "m.room.member"
    else:
        assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN"), r.json()
        assert "not federated" in r.json()["error"]


def remote_public_room_state(join_rule: str) -> list[dict]:
    return [{"type": "m.room.create", "state_key": "", "content": {"room_version": "10"}},
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": join_rule}},
            {"type": "m.room.encryption", "state_key": "",
             "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]


@pytest.mark.parametrize(("name", "join_rule", "refused"), [
    ("ti-m-pro", "public", True), ("ti-m-basis", "public", True), ("bwmessenger", "public", True),
    ("ti-m-pro", "invite", False), ("standard", "public", False),
])
def test_local_users_cannot_join_remote_public_rooms(profile, name, join_rule, refused):
    """The join_remote_room hook as services/federation/remote_membership.py calls it."""
    profile(name)
    state = remote_public_room_state(join_rule)
    ctx = {"actor": "@alice:localhost", "target": "!r:remote.example",
           "room_id": "!r:remote.example", "server": "remote.example",
           "join_rule": join_rule, "encrypted": True}
    if not refused:
        assert run(Hook.JOIN_REMOTE_ROOM, ctx, value=state) == state
        return
    with pytest.raises(PolicyDenied) as e:
        run(Hook.JOIN_REMOTE_ROOM, ctx, value=state)
    assert (e.value.status, e.value.errcode, e.value.rule) == (
        403, "M_FORBIDDEN", "room_rules.remote_public_room")
    # The context's join rule alone decides too (callers without the state list).
    with pytest.raises(PolicyDenied):
        run(Hook.JOIN_REMOTE_ROOM, {**ctx})
