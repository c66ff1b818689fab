"""The membership handshakes other servers make with us (make_join/send_join, make_leave/
send_leave, make_knock/send_knock, invite v2), signed as a remote server signs them, and every
refusal a bad peer can provoke: right errcode, nothing stored.

The remote server is this test playing one: its signing key is generated here and known to our
keyring as if fetched (no second server is needed to check what WE answer; the live tests in
test_remote_join_live.py run two real servers)."""

from __future__ import annotations

import time
from urllib.parse import quote, unquote

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import AsyncClient

from audit.models import AuditRecord
from compliance.hooks import Deny, Hook, register, unregister
from homeserver.models import CurrentState
from homeserver.models import Event as EventRow
from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.events import Event
from homeserver.protocol.hashing import compute_event_id
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.protocol.signing import (
    generate_signing_key,
    public_key_base64,
    sign_event,
    sign_json,
)
from homeserver.protocol.xmatrix import authorization_header
from homeserver.storage.server_keys import StoredKey, store_key
from tests.accounts.conftest import amake_user

pytestmark = pytest.mark.django_db(transaction=True)

REMOTE = "remote.example:8448"
KEY = generate_signing_key()
BOB = f"@bob:{REMOTE}"
F1 = "/_matrix/federation/v1"
F2 = "/_matrix/federation/v2"


@pytest.fixture(autouse=True)
def remote_key_known():
    doc = sign_json({"server_name": REMOTE, "valid_until_ts": int(time.time() * 1000) + 3600_000,
                     "verify_keys": {KEY.key_id: {"key": public_key_base64(KEY)}}}, REMOTE, KEY)
    store_key(StoredKey(REMOTE, KEY.key_id, public_key_base64(KEY), doc["valid_until_ts"], None,
                        encode_canonical_json(doc).decode()), 0)


async def fed(method: str, path: str, body=None, *, origin: str = REMOTE, key=KEY):
    # Django's test client presents the path decoded (no raw_path in its ASGI scope), so sign
    # that form; a real server signs the encoded path, which uvicorn passes on as raw_path.
    p, _, query = path.partition("?")
    signed_uri = unquote(p) + ("?" + query if query else "")
    auth = authorization_header(method, signed_uri, origin, settings.PALISADE.server_name,
                                body, key)
    client = AsyncClient()
    headers = {"Authorization": auth}
    if method == "GET":
        return await client.get(path, headers=headers)
    return await client.generic(method, path, orjson.dumps(body), "application/json",
                                headers=headers)


def q(s: str) -> str:
    return quote(s, safe="")


async def local_room(api, **body) -> tuple[str, str, str]:
    user = await amake_user()
    token = (await api.login(user))["access_token"]
    r = await api.call("POST", "/createRoom", body, token=token)
    assert r.status_code == 200, r.json()
    return user, token, r.json()["room_id"]


def remote_signed(template: dict, room_version: str, *, key=KEY, origin: str = REMOTE,
                  **content) -> tuple[str, dict]:
    """What the remote server does with a template: fill in, hash, sign."""
    rv = KNOWN_ROOM_VERSIONS[room_version]
    pdu = dict(template)
    pdu["origin_server_ts"] = int(time.time() * 1000)
    pdu["content"] = {**pdu["content"], **content}
    pdu = sign_event(pdu, rv, origin, key)
    return compute_event_id(pdu, rv), pdu


async def make(kind: str, room_id: str, user: str = BOB, ver=("10", "11")) -> dict:
    query = "&".join(f"ver={v}" for v in ver)
    r = await fed("GET", f"{F1}/make_{kind}/{q(room_id)}/{q(user)}?{query}")
    assert r.status_code == 200, r.json()
    return r.json()


def membership(room_id: str, user: str) -> str | None:
    row = CurrentState.objects.filter(room_id=room_id, type="m.room.member",
                                      state_key=user).values_list("membership", flat=True)
    return row.first()


amembership = sync_to_async(membership)
event_known = sync_to_async(lambda eid: EventRow.objects.filter(event_id=eid).exists())
audit_count = sync_to_async(lambda: AuditRecord.objects.count())


# --------------------------------------------------------------------------- join


async def test_make_join_and_send_join_admit_a_remote_user(api):
    alice, token, room_id = await local_room(api, preset="public_chat", name="Ward 7")
    made = await make("join", room_id)
    assert made["room_version"] == "10"
    template = made["event"]
    assert (template["type"], template["state_key"], template["sender"]) == (
        "m.room.member", BOB, BOB)
    assert template["content"]["membership"] == "join"
    assert template["prev_events"] and template["auth_events"]
    event_id, pdu = remote_signed(template, "10", displayname="Bob")
    r = await fed("PUT", f"{F2}/send_join/{q(room_id)}/{q(event_id)}", pdu)
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["members_omitted"] is False
    assert body["origin"] == settings.PALISADE.server_name
    state_types = {(e["type"], e.get("state_key")) for e in body["state"]}
    assert ("m.room.create", "") in state_types and ("m.room.member", alice) in state_types
    assert ("m.room.member", BOB) not in state_types  # the state BEFORE the join
    chain_ids = {compute_event_id(e, KNOWN_ROOM_VERSIONS["10"]) for e in body["auth_chain"]}
    assert set(template["auth_events"]) <= chain_ids
    assert compute_event_id(body["event"], KNOWN_ROOM_VERSIONS["10"]) == event_id
    # The room now has Bob: local members see him, and so does a message's auth.
    assert await amembership(room_id, BOB) == "join"
    r = await api.call("GET", f"/rooms/{q(room_id)}/joined_members", token=token)
    assert BOB in r.json()["joined"]
    # A second make_join of a joined user is still answered (joining is idempotent).
    assert (await make("join", room_id))["event"]["content"]["membership"] == "join"


async def test_incompatible_room_version_and_foreign_user(api):
    _, _, room_id = await local_room(api, preset="public_chat")
    r = await fed("GET", f"{F1}/make_join/{q(room_id)}/{q(BOB)}?ver=1&ver=2")
    assert (r.status_code, r.json()["errcode"], r.json()["room_version"]) == (
        400, "M_INCOMPATIBLE_ROOM_VERSION", "10")
    r = await fed("GET", f"{F1}/make_join/{q(room_id)}/{q(BOB)}")  # no ver: only "1"
    assert r.json()["errcode"] == "M_INCOMPATIBLE_ROOM_VERSION"
    other = "@eve:elsewhere.example"
    r = await fed("GET", f"{F1}/make_join/{q(room_id)}/{q(other)}?ver=10")
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    r = await fed("GET", f"{F1}/make_join/{q('!nope:' + settings.PALISADE.server_name)}/"
                         f"{q(BOB)}?ver=10")
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")


async def test_invite_only_room_refuses_uninvited_join(api):
    _, _, room_id = await local_room(api, preset="private_chat")
    r = await fed("GET", f"{F1}/make_join/{q(room_id)}/{q(BOB)}?ver=10")
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")


async def public_template(api) -> tuple[str, str, dict]:
    _, token, room_id = await local_room(api, preset="public_chat")
    return room_id, token, (await make("join", room_id))["event"]


@pytest.mark.parametrize("case", ["id_mismatch", "bad_signature", "other_servers_user",
                                  "not_a_join", "state_key_not_sender", "not_json_event"])
async def test_bad_send_join_is_refused_and_stores_nothing(api, case):
    room_id, _, template = await public_template(api)
    event_id, pdu = remote_signed(template, "10")
    path_id = event_id
    expected = (400, "M_INVALID_PARAM")
    if case == "id_mismatch":
        path_id = "$someotherevent"
    elif case == "bad_signature":
        event_id, pdu = remote_signed(template, "10", key=generate_signing_key(KEY.version))
        path_id = event_id
    elif case == "other_servers_user":
        # Signed by elsewhere.example for its user, but sent to us by remote.example.
        t = {**template, "sender": "@eve:elsewhere.example", "state_key": "@eve:elsewhere.example"}
        event_id, pdu = remote_signed(t, "10")
        path_id = event_id
    elif case == "not_a_join":
        event_id, pdu = remote_signed(template, "10", membership="leave")
        path_id = event_id
    elif case == "state_key_not_sender":
        t = {**template, "state_key": "@carol:" + REMOTE}
        event_id, pdu = remote_signed(t, "10")
        path_id = event_id
    elif case == "not_json_event":
        pdu = ["not", "an", "event"]
        expected = (400, "M_BAD_JSON")
    r = await fed("PUT", f"{F2}/send_join/{q(room_id)}/{q(path_id)}", pdu)
    assert (r.status_code, r.json()["errcode"]) == expected, r.json()
    assert not await event_known(event_id)
    assert await amembership(room_id, BOB) is None


async def test_send_join_not_allowed_by_join_rules_is_403_and_stores_nothing(api):
    _, token, room_id = await local_room(api, preset="public_chat")
    template = (await make("join", room_id))["event"]
    # The room turns invite-only before the join arrives.
    r = await api.call("PUT", f"/rooms/{q(room_id)}/state/m.room.join_rules", {
        "join_rule": "invite"}, token=token)
    assert r.status_code == 200
    event_id, pdu = remote_signed(template, "10")
    before = await audit_count()
    r = await fed("PUT", f"{F2}/send_join/{q(room_id)}/{q(event_id)}", pdu)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert not await event_known(event_id)
    assert await amembership(room_id, BOB) is None
    assert await audit_count() == before


# --------------------------------------------------------------------------- leave, knock


async def test_make_leave_send_leave(api):
    room_id, _, template = await public_template(api)
    event_id, pdu = remote_signed(template, "10")
    r = await fed("PUT", f"{F2}/send_join/{q(room_id)}/{q(event_id)}", pdu)
    assert r.status_code == 200
    made = await make("leave", room_id, ver=())
    assert made["event"]["content"]["membership"] == "leave"
    leave_id, leave = remote_signed(made["event"], made["room_version"])
    r = await fed("PUT", f"{F2}/send_leave/{q(room_id)}/{q(leave_id)}", leave)
    assert (r.status_code, r.json()) == (200, {})
    assert await amembership(room_id, BOB) == "leave"
    # A leave signed for a join is refused.
    join_id, join = remote_signed(template, "10")
    r = await fed("PUT", f"{F2}/send_leave/{q(room_id)}/{q(join_id)}", join)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")


async def test_make_leave_for_a_stranger_is_forbidden(api):
    room_id, _, _ = await public_template(api)
    r = await fed("GET", f"{F1}/make_leave/{q(room_id)}/{q(BOB)}")
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")


async def test_knock_on_a_knock_room(api):
    _, _, room_id = await local_room(api, preset="private_chat", initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}])
    made = await make("knock", room_id)
    event_id, pdu = remote_signed(made["event"], made["room_version"], reason="let me in")
    r = await fed("PUT", f"{F1}/send_knock/{q(room_id)}/{q(event_id)}", pdu)
    assert r.status_code == 200, r.json()
    types = {e["type"] for e in r.json()["knock_room_state"]}
    assert {"m.room.create", "m.room.join_rules"} <= types
    assert await amembership(room_id, BOB) == "knock"


async def test_knock_refused_where_join_rules_do_not_allow_it(api):
    room_id, _, _ = await public_template(api)
    r = await fed("GET", f"{F1}/make_knock/{q(room_id)}/{q(BOB)}?ver=10")
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")


# --------------------------------------------------------------------------- invite


def remote_invite(invitee: str, room_id: str = f"!ward:{REMOTE}", *, sender: str = BOB,
                  key=KEY, origin: str = REMOTE, membership: str = "invite") -> tuple[str, dict]:
    rv = KNOWN_ROOM_VERSIONS["10"]
    pdu = {"type": "m.room.member", "room_id": room_id, "sender": sender,
           "state_key": invitee, "content": {"membership": membership},
           "origin": origin, "origin_server_ts": int(time.time() * 1000), "depth": 5,
           "prev_events": ["$" + "a" * 43], "auth_events": ["$" + "b" * 43]}
    pdu = sign_event(pdu, rv, origin, key)
    return compute_event_id(pdu, rv), pdu


INVITE_STATE = [
    {"type": "m.room.create", "state_key": "", "sender": BOB, "content": {"room_version": "10"}},
    {"type": "m.room.name", "state_key": "", "sender": BOB, "content": {"name": "Ward 9"}},
]


async def test_remote_invite_is_cosigned_and_shows_in_sync_then_rejected(api):
    user = await amake_user()
    token = (await api.login(user))["access_token"]
    room_id = f"!ward:{REMOTE}"
    event_id, pdu = remote_invite(user, room_id)
    r = await fed("PUT", f"{F2}/invite/{q(room_id)}/{q(event_id)}",
                  {"room_version": "10", "event": pdu, "invite_room_state": INVITE_STATE})
    assert r.status_code == 200, r.json()
    signed = r.json()["event"]
    assert set(signed["signatures"]) == {REMOTE, settings.PALISADE.server_name}
    assert compute_event_id(signed, KNOWN_ROOM_VERSIONS["10"]) == event_id
    r = await api.call("GET", "/sync", token=token)
    invite = r.json()["rooms"]["invite"][room_id]["invite_state"]["events"]
    assert {"type": "m.room.name", "state_key": "", "sender": BOB,
            "content": {"name": "Ward 9"}} in invite
    assert any(e["type"] == "m.room.member" and e["state_key"] == user for e in invite)
    since = r.json()["next_batch"]
    r = await api.call("GET", "/joined_rooms", token=token)
    assert room_id not in r.json()["joined_rooms"]
    # Rejecting: the inviting server cannot be reached from here (no such host), so the
    # invite is rejected locally and the room moves to `leave`.
    r = await api.call("POST", f"/rooms/{q(room_id)}/leave", {}, token=token)
    assert r.status_code == 200, r.json()
    r = await api.call("GET", f"/sync?since={since}", token=token)
    assert room_id in r.json()["rooms"]["leave"]
    assert room_id not in r.json()["rooms"]["invite"]
    assert await amembership(room_id, user) == "leave"


@pytest.mark.parametrize("case", ["not_local", "not_invite", "sender_of_other_server",
                                  "id_mismatch", "bad_signature", "unknown_version",
                                  "bad_invite_state", "unknown_user"])
async def test_bad_invites_are_refused_and_store_nothing(case):
    user = await amake_user()
    room_id = f"!ward:{REMOTE}"
    body_extra: dict = {}
    path_id = None
    expected = (400, "M_INVALID_PARAM")
    if case == "not_local":
        event_id, pdu = remote_invite("@someone:elsewhere.example")
    elif case == "not_invite":
        event_id, pdu = remote_invite(user, membership="join")
    elif case == "sender_of_other_server":
        event_id, pdu = remote_invite(user, sender="@eve:elsewhere.example")
    elif case == "id_mismatch":
        event_id, pdu = remote_invite(user)
        path_id = "$" + "c" * 43
    elif case == "bad_signature":
        event_id, pdu = remote_invite(user, key=generate_signing_key(KEY.version))
    elif case == "unknown_version":
        event_id, pdu = remote_invite(user)
        body_extra = {"room_version": "99"}
        expected = (400, "M_INCOMPATIBLE_ROOM_VERSION")
    elif case == "bad_invite_state":
        event_id, pdu = remote_invite(user)
        body_extra = {"invite_room_state": [{"type": "m.room.name"}]}
    else:
        event_id, pdu = remote_invite(f"@ghost:{settings.PALISADE.server_name}")
        expected = (404, "M_NOT_FOUND")
    body = {"room_version": "10", "event": pdu, "invite_room_state": INVITE_STATE, **body_extra}
    r = await fed("PUT", f"{F2}/invite/{q(room_id)}/{q(path_id or event_id)}", body)
    assert (r.status_code, r.json()["errcode"]) == expected, r.json()
    assert not await event_known(event_id)
    assert await amembership(room_id, user) is None


async def test_invite_policy_denial_is_403_audited_and_stores_nothing():
    user = await amake_user()

    def no_remote_invites(ctx: dict) -> object:
        return Deny(rule="test.no_remote_invites", reason="No invites from there")

    register(Hook.INVITE, no_remote_invites)
    try:
        event_id, pdu = remote_invite(user)
        before = await audit_count()
        r = await fed("PUT", f"{F2}/invite/{q(f'!ward:{REMOTE}')}/{q(event_id)}",
                      {"room_version": "10", "event": pdu})
    finally:
        unregister(Hook.INVITE, no_remote_invites)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    records = await sync_to_async(list)(AuditRecord.objects.order_by("seq")[before:])
    assert len(records) == 1
    details = records[0].details if isinstance(records[0].details, dict) else orjson.loads(
        records[0].details)
    assert (records[0].actor, details["rule"], details["origin"]) == (
        BOB, "test.no_remote_invites", REMOTE)
    assert not await event_known(event_id)
    assert await amembership(f"!ward:{REMOTE}", user) is None


async def test_unauthenticated_membership_requests_get_401(api):
    room_id, _, _ = await public_template(api)
    r = await AsyncClient().get(f"{F1}/make_join/{q(room_id)}/{q(BOB)}?ver=10")
    assert (r.status_code, r.json()["errcode"]) == (401, "M_UNAUTHORIZED")


# --------------------------------------------------------------------------- restricted, forward

REMOTE2 = "second.example:8448"
KEY2 = generate_signing_key()
CAROL = f"@carol:{REMOTE2}"


@pytest.fixture
def second_remote_key_known():
    doc = sign_json({"server_name": REMOTE2, "valid_until_ts": int(time.time() * 1000) + 3600_000,
                     "verify_keys": {KEY2.key_id: {"key": public_key_base64(KEY2)}}}, REMOTE2,
                    KEY2)
    store_key(StoredKey(REMOTE2, KEY2.key_id, public_key_base64(KEY2), doc["valid_until_ts"],
                        None, encode_canonical_json(doc).decode()), 0)


async def remote_join(room_id: str, user: str = BOB, *, key=KEY, origin: str = REMOTE) -> dict:
    query = "ver=10"
    r = await fed("GET", f"{F1}/make_join/{q(room_id)}/{q(user)}?{query}", origin=origin,
                  key=key)
    assert r.status_code == 200, r.json()
    event_id, pdu = remote_signed(r.json()["event"], "10", key=key, origin=origin)
    r = await fed("PUT", f"{F2}/send_join/{q(room_id)}/{q(event_id)}", pdu, origin=origin,
                  key=key)
    assert r.status_code == 200, r.json()
    return r.json()


async def test_join_is_forwarded_to_the_other_servers_in_the_room(api,
                                                                  second_remote_key_known):
    from homeserver.models.federation_outbound import OutboundItem

    _, _, room_id = await local_room(api, preset="public_chat")
    await remote_join(room_id)  # remote.example is now in the room
    body = await remote_join(room_id, CAROL, key=KEY2, origin=REMOTE2)
    carol_join = compute_event_id(body["event"], KNOWN_ROOM_VERSIONS["10"])
    assert sorted(body["servers_in_room"]) == sorted(
        [settings.PALISADE.server_name, REMOTE, REMOTE2])
    queued = await sync_to_async(list)(
        OutboundItem.objects.filter(kind="pdu").values_list("destination", "json"))
    to_remote = [orjson.loads(j) for d, j in queued if d == REMOTE]
    assert carol_join in {compute_event_id(p, KNOWN_ROOM_VERSIONS["10"]) for p in to_remote}
    # Never back to the server that sent it.
    assert not [d for d, j in queued if d == REMOTE2
                and compute_event_id(orjson.loads(j), KNOWN_ROOM_VERSIONS["10"]) == carol_join]


async def test_restricted_room_join_is_authorised_and_cosigned_by_us(api):
    alice, token, space = await local_room(api, preset="public_chat")
    r = await api.call("POST", "/createRoom", {"preset": "private_chat", "initial_state": [
        {"type": "m.room.join_rules", "state_key": "", "content": {
            "join_rule": "restricted",
            "allow": [{"type": "m.room_membership", "room_id": space}]}}]}, token=token)
    restricted = r.json()["room_id"]
    # Not yet in the allowed room: refused.
    r = await fed("GET", f"{F1}/make_join/{q(restricted)}/{q(BOB)}?ver=10")
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    await remote_join(space)
    made = await make("join", restricted)
    assert made["event"]["content"]["join_authorised_via_users_server"] == alice
    event_id, pdu = remote_signed(made["event"], "10")
    r = await fed("PUT", f"{F2}/send_join/{q(restricted)}/{q(event_id)}", pdu)
    assert r.status_code == 200, r.json()
    event = r.json()["event"]
    # Spec rooms v8+ auth rule 4.2: the authorising server's signature is on the join.
    assert set(event["signatures"]) == {REMOTE, settings.PALISADE.server_name}
    assert compute_event_id(event, KNOWN_ROOM_VERSIONS["10"]) == event_id
    assert await amembership(restricted, BOB) == "join"


async def test_restricted_room_whose_conditions_we_cannot_check(api):
    _, token, _ = await local_room(api)
    unknown = "!faraway:elsewhere.example"
    r = await api.call("POST", "/createRoom", {"preset": "private_chat", "initial_state": [
        {"type": "m.room.join_rules", "state_key": "", "content": {
            "join_rule": "restricted",
            "allow": [{"type": "m.room_membership", "room_id": unknown}]}}]}, token=token)
    r = await fed("GET", f"{F1}/make_join/{q(r.json()['room_id'])}/{q(BOB)}?ver=10")
    assert (r.status_code, r.json()["errcode"]) == (400, "M_UNABLE_TO_AUTHORISE_JOIN")


# --------------------------------------------------------------------------- out-of-band


def remote_member_event(target: str, membership: str, auth: list[str], *, sender: str = BOB,
                        room_id: str = f"!ward:{REMOTE}") -> Event:
    rv = KNOWN_ROOM_VERSIONS["10"]
    pdu = {"type": "m.room.member", "room_id": room_id, "sender": sender,
           "state_key": target, "content": {"membership": membership},
           "origin": REMOTE, "origin_server_ts": int(time.time() * 1000), "depth": 6,
           "prev_events": ["$" + "d" * 43], "auth_events": auth}
    pdu = sign_event(pdu, rv, REMOTE, KEY)
    return Event(compute_event_id(pdu, rv), rv, pdu)


async def test_revoked_remote_invite_moves_the_invitee_to_leave(api):
    """The inviting server kicks the invitee before they join: the leave reaches us in a
    transaction for a room we only know from the invite (apply_out_of_band_membership)."""
    from homeserver.services.federation.invites import apply_out_of_band_membership

    user = await amake_user()
    token = (await api.login(user))["access_token"]
    room_id = f"!ward:{REMOTE}"
    invite_id, pdu = remote_invite(user, room_id)
    r = await fed("PUT", f"{F2}/invite/{q(room_id)}/{q(invite_id)}",
                  {"room_version": "10", "event": pdu, "invite_room_state": INVITE_STATE})
    assert r.status_code == 200
    since = (await api.call("GET", "/sync", token=token)).json()["next_batch"]
    apply = sync_to_async(apply_out_of_band_membership)
    # Not citing the invite, or from another server than its sender's: not ours to apply.
    stray = remote_member_event(user, "leave", ["$" + "e" * 43])
    assert not await apply(REMOTE, stray)
    revoke = remote_member_event(user, "leave", ["$" + "b" * 43, invite_id])
    assert not await apply("elsewhere.example", revoke)
    assert await amembership(room_id, user) == "invite"
    assert await apply(REMOTE, revoke)
    assert await amembership(room_id, user) == "leave"
    r = await api.call("GET", f"/sync?since={since}", token=token)
    assert room_id in r.json()["rooms"]["leave"] and room_id not in r.json()["rooms"]["invite"]
    # A room we hold state for takes the normal ingest path instead.
    _, _, local = await local_room(api, preset="public_chat")
    assert not await apply(REMOTE, remote_member_event(user, "leave", [invite_id],
                                                       room_id=local))


async def test_a_revoked_invite_arriving_in_a_transaction_ends_the_invite(api):
    """The same revocation through PUT /send, as the inviting server delivers it."""
    user = await amake_user()
    room_id = f"!ward2:{REMOTE}"
    invite_id, pdu = remote_invite(user, room_id)
    r = await fed("PUT", f"{F2}/invite/{q(room_id)}/{q(invite_id)}",
                  {"room_version": "10", "event": pdu, "invite_room_state": INVITE_STATE})
    assert r.status_code == 200
    revoke = remote_member_event(user, "leave", [invite_id], room_id=room_id)
    body = {"origin": REMOTE, "origin_server_ts": 1, "pdus": [revoke.pdu], "edus": []}
    r = await fed("PUT", f"{F1}/send/revoke-{invite_id[1:9]}", body)
    assert r.status_code == 200 and r.json() == {"pdus": {revoke.event_id: {}}}, r.content
    assert await amembership(room_id, user) == "leave"
