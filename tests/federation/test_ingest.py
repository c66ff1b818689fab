"""Inbound /send: PDUs through the spec's checks (format, signatures, hashes, auth on the auth
events, on the state before, soft failure on the current state), persisted into the room
graph and seen by local clients; transactions answered once per id.

The remote server here is played by the test: it holds a real ed25519 key (published to our
keyring as if fetched) and builds real signed events with the protocol code. Exchanges with a
running peer (missing events, state fetches) are in the live tests against Synapse."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from django.conf import settings
from django.test import Client

from audit.models import AuditRecord
from homeserver.protocol.auth_rules import auth_types_for_event
from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.event_builder import build_event
from homeserver.protocol.events import Event
from homeserver.protocol.signing import generate_signing_key, public_key_base64, sign_json
from homeserver.protocol.xmatrix import authorization_header
from homeserver.services.events.send import do_send_event
from homeserver.services.rooms import membership
from homeserver.services.rooms.create import do_create_room
from homeserver.services.sync.filters import parse_sync_filter
from homeserver.services.sync.sync import SyncRequest, build_sync
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage import state as state_store
from homeserver.storage.server_keys import StoredKey, store_key
from tests.accounts.conftest import make_user as make_local_user
from tests.compliance.conftest import use_profile  # noqa: F401 - fixture registered by import
from tests.services.test_sync import sync

pytestmark = pytest.mark.django_db(transaction=True)

REMOTE = "remote.example:8448"
KEY = generate_signing_key()
MALLORY = f"@mallory:{REMOTE}"
REMY = f"@remy:{REMOTE}"


@pytest.fixture(autouse=True)
def remote_key_known():
    doc = sign_json({"server_name": REMOTE, "valid_until_ts": int(time.time() * 1000) + 3600_000,
                     "verify_keys": {KEY.key_id: {"key": public_key_base64(KEY)}}}, REMOTE, KEY)
    store_key(StoredKey(REMOTE, KEY.key_id, public_key_base64(KEY), doc["valid_until_ts"], None,
                        encode_canonical_json(doc).decode()), 0)


def remote_event(room_id: str, sender: str, event_type: str, content: dict[str, Any], *,
                 state_key: str | None = None, prev: list[str] | None = None,
                 key=KEY, server: str = REMOTE, ts: int | None = None) -> Event:
    """An event as the remote server would build it on the state after `prev` (default: our
    forward extremities)."""
    rv = room_store.room_version(room_id)
    prev = prev if prev is not None else event_store.forward_extremities(room_id)
    recs = event_store.get_event_records(prev)
    states = [state_store.state_for_group(r.state_group) for r in recs.values()]
    state = states[0] if states else {}
    keys = auth_types_for_event(rv, event_type, sender, state_key, content)
    depth = max(r.event.depth for r in recs.values()) + 1
    return build_event(room_version=rv, room_id=room_id, sender=sender, event_type=event_type,
                       content=content, state_key=state_key, prev_events=prev,
                       auth_events=[state[k] for k in keys if k in state], depth=depth,
                       origin_server_ts=ts or int(time.time() * 1000), server_name=server,
                       signing_key=key)


def send_txn(pdus: list[dict], txn_id: str | None = None, edus: list | None = None,
             origin: str = REMOTE):
    txn_id = txn_id or f"t{time.monotonic_ns()}"
    path = f"/_matrix/federation/v1/send/{txn_id}"
    body = {"origin": origin, "origin_server_ts": int(time.time() * 1000), "pdus": pdus,
            "edus": edus or []}
    auth = authorization_header("PUT", path, origin, settings.PALISADE.server_name, body, KEY)
    return Client().put(path, data=orjson.dumps(body), content_type="application/json",
                        HTTP_AUTHORIZATION=auth)


def timeline_ids(user: str, room_id: str) -> list[str]:
    room = sync(user)["rooms"]["join"].get(room_id)
    return [e["event_id"] for e in room["timeline"]["events"]] if room else []


@pytest.fixture
def room():
    alice = make_local_user()
    room_id = do_create_room(alice, {"preset": "public_chat"})
    return alice, room_id


def join_remote(room_id: str, user: str = MALLORY) -> Event:
    join = remote_event(room_id, user, "m.room.member", {"membership": "join"}, state_key=user)
    r = send_txn([join.pdu])
    assert r.status_code == 200 and r.json() == {"pdus": {join.event_id: {}}}, r.content
    return join


def test_remote_join_and_message_reach_local_clients(room):
    alice, room_id = room
    join = join_remote(room_id)
    msg = remote_event(room_id, MALLORY, "m.room.message", {"msgtype": "m.text", "body": "hi"})
    assert send_txn([msg.pdu]).json() == {"pdus": {msg.event_id: {}}}
    ids = timeline_ids(alice, room_id)
    assert ids[-2:] == [join.event_id, msg.event_id]
    assert MALLORY in state_store.room_members(room_id)
    # Alice's next event builds on the remote message: the graph is one line again.
    reply = do_send_event(room_id=room_id, sender=alice, event_type="m.room.message",
                          content={"msgtype": "m.text", "body": "hello"})
    assert event_store.get_event(reply).prev_event_ids == [msg.event_id]


def test_a_retried_transaction_is_answered_the_same_and_processed_once(room):
    alice, room_id = room
    join_remote(room_id)
    msg = remote_event(room_id, MALLORY, "m.room.message", {"msgtype": "m.text", "body": "x"})
    first = send_txn([msg.pdu], txn_id="same")
    again = send_txn([msg.pdu], txn_id="same")
    assert first.json() == again.json() == {"pdus": {msg.event_id: {}}}
    assert timeline_ids(alice, room_id).count(msg.event_id) == 1


def test_forged_signature_is_dropped(room):
    _, room_id = room
    join_remote(room_id)
    forged = remote_event(room_id, MALLORY, "m.room.message", {"msgtype": "m.text", "body": "x"},
                          key=generate_signing_key(KEY.version))
    result = send_txn([forged.pdu]).json()["pdus"][forged.event_id]
    assert "signature" in result["error"]
    assert event_store.get_event(forged.event_id) is None


def test_a_server_cannot_sign_for_another_servers_user(room):
    alice, room_id = room
    # Signed by REMOTE, but the sender is a user of our own server.
    fake = remote_event(room_id, alice, "m.room.message", {"msgtype": "m.text", "body": "x"})
    assert "error" in send_txn([fake.pdu]).json()["pdus"][fake.event_id]
    assert event_store.get_event(fake.event_id) is None


def test_altered_content_is_redacted_not_dropped(room):
    _, room_id = room
    join_remote(room_id)
    msg = remote_event(room_id, MALLORY, "m.room.message", {"msgtype": "m.text", "body": "x"})
    tampered = {**msg.pdu, "content": {"msgtype": "m.text", "body": "altered"}}
    assert send_txn([tampered]).json() == {"pdus": {msg.event_id: {}}}
    stored = event_store.get_event(msg.event_id)
    assert stored is not None and stored.content == {}


def test_event_from_a_non_member_is_rejected_and_never_shown(room):
    alice, room_id = room
    msg = remote_event(room_id, MALLORY, "m.room.message", {"msgtype": "m.text", "body": "x"})
    result = send_txn([msg.pdu]).json()["pdus"][msg.event_id]
    assert "rejected" in result["error"]
    assert msg.event_id not in timeline_ids(alice, room_id)
    assert event_store.event_status(msg.event_id)[1] is not None  # kept, marked rejected
    assert msg.event_id not in event_store.forward_extremities(room_id)


def test_event_valid_at_its_place_but_not_now_is_soft_failed(room):
    alice, room_id = room
    join = join_remote(room_id)
    membership.do_ban(alice, room_id, MALLORY, reason=None)
    extremities = set(event_store.forward_extremities(room_id))
    # Mallory's server had not seen the ban: the message builds on Mallory's join.
    msg = remote_event(room_id, MALLORY, "m.room.message", {"msgtype": "m.text", "body": "x"},
                       prev=[join.event_id])
    assert send_txn([msg.pdu]).json() == {"pdus": {msg.event_id: {}}}
    assert set(event_store.forward_extremities(room_id)) == extremities
    assert msg.event_id not in timeline_ids(alice, room_id)
    assert event_store.event_status(msg.event_id) == (False, None, "soft_failed")
    assert msg.event_id not in event_store.forward_extremities(room_id)
    assert state_store.membership_of(room_id, MALLORY)[0] == "ban"


def test_concurrent_remote_state_changes_are_resolved(room):
    alice, room_id = room
    join = join_remote(room_id)
    join_remote(room_id, REMY)
    # Two topic changes built on the same parent: a fork with two extremities.
    base = event_store.forward_extremities(room_id)
    # Each user changes their own member event: allowed, and both branches touch state.
    t1 = remote_event(room_id, MALLORY, "m.room.member",
                      {"membership": "join", "displayname": "M1"}, state_key=MALLORY, prev=base)
    t2 = remote_event(room_id, REMY, "m.room.member",
                      {"membership": "join", "displayname": "R2"}, state_key=REMY, prev=base)
    assert send_txn([t1.pdu, t2.pdu]).json() == {"pdus": {t1.event_id: {}, t2.event_id: {}}}
    assert set(event_store.forward_extremities(room_id)) == {t1.event_id, t2.event_id}
    current = state_store.current_state_ids(room_id)
    assert current[("m.room.member", MALLORY)] == t1.event_id
    assert current[("m.room.member", REMY)] == t2.event_id
    assert join.event_id != t1.event_id
    # A local event merges the fork.
    eid = do_send_event(room_id=room_id, sender=alice, event_type="m.room.message",
                        content={"msgtype": "m.text", "body": "merge"})
    assert set(event_store.get_event(eid).prev_event_ids) == {t1.event_id, t2.event_id}


def test_ban_on_one_branch_wins_over_a_message_on_the_other(room):
    """State resolution: a fork where the room admin bans a remote user while that user's
    server changes the user's own state; the ban wins and the current state says so."""
    alice, room_id = room
    join_remote(room_id)
    base = event_store.forward_extremities(room_id)
    rename = remote_event(room_id, MALLORY, "m.room.member",
                          {"membership": "join", "displayname": "Evil"}, state_key=MALLORY,
                          prev=base)
    membership.do_ban(alice, room_id, MALLORY, reason=None)
    assert send_txn([rename.pdu]).json() == {"pdus": {rename.event_id: {}}}
    assert state_store.membership_of(room_id, MALLORY)[0] == "ban"


def test_state_after_gives_a_client_the_resolved_state_of_a_fork(room):
    """Two concurrent room names: Alice's (local) and Mallory's (remote, built on the same
    parent, stamped earlier). State resolution orders by timestamp, so Alice's name wins
    although Mallory's event arrives last: a client applying the timeline would end with the
    wrong name; `state_after` (spec v1.16) gives it the resolved one."""
    alice, room_id = room
    join_remote(room_id)
    do_send_event(room_id=room_id, sender=alice, event_type="m.room.power_levels", state_key="",
                  content={"users": {alice: 100, MALLORY: 50}, "state_default": 50})
    since = sync(alice)["next_batch"]
    base = event_store.forward_extremities(room_id)
    mine = do_send_event(room_id=room_id, sender=alice, event_type="m.room.name", state_key="",
                         content={"name": "Alice's"})
    theirs = remote_event(room_id, MALLORY, "m.room.name", {"name": "Mallory's"}, state_key="",
                          prev=base, ts=event_store.get_event(mine).origin_server_ts - 1000)
    assert send_txn([theirs.pdu]).json() == {"pdus": {theirs.event_id: {}}}
    assert state_store.current_state_ids(room_id)[("m.room.name", "")] == mine
    flt = parse_sync_filter({})
    resp = build_sync(SyncRequest(user_id=alice, device_id="D", since=int(since[1:]), filter=flt,
                                  full_state=False, use_state_after=True))[0]
    entry = resp["rooms"]["join"][room_id]
    assert [e["event_id"] for e in entry["timeline"]["events"]] == [mine, theirs.event_id]
    assert "state" not in entry
    names = [e["event_id"] for e in entry["state_after"]["events"] if e["type"] == "m.room.name"]
    assert names == [mine]


def test_bad_transactions_get_clear_errors():
    r = send_txn([{}] * 51)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON")
    path = "/_matrix/federation/v1/send/bad"
    auth = authorization_header("PUT", path, REMOTE, settings.PALISADE.server_name, [], KEY)
    r = Client().put(path, data=b"[]", content_type="application/json", HTTP_AUTHORIZATION=auth)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON")
    r = Client().put(path, data=b"{}", content_type="application/json")
    assert (r.status_code, r.json()["errcode"]) == (401, "M_UNAUTHORIZED")


def test_pdus_for_unknown_rooms_and_malformed_pdus_are_dropped(room):
    _, room_id = room
    r = send_txn([{"room_id": "!nowhere:else", "type": "m.room.message"},
                  {"room_id": room_id, "type": 5}, "not an object"])
    assert r.status_code == 200 and r.json() == {"pdus": {}}


def test_plaintext_from_remote_is_withheld_under_e2ee_only_and_audited(use_profile):  # noqa: F811
    alice = make_local_user()
    use_profile("strict")
    room_id = do_create_room(alice, {"preset": "public_chat", "initial_state": [
        {"type": "m.room.encryption", "state_key": "",
         "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]})
    join_remote(room_id)
    before = AuditRecord.objects.count()
    plain = remote_event(room_id, MALLORY, "m.room.message",
                         {"msgtype": "m.text", "body": "secret in the clear"})
    assert send_txn([plain.pdu]).json() == {"pdus": {plain.event_id: {}}}
    assert plain.event_id not in timeline_ids(alice, room_id)
    # In the graph: the next local event builds on it.
    assert plain.event_id in event_store.forward_extremities(room_id)
    new = list(AuditRecord.objects.order_by("seq")[before:])
    assert [r.target for r in new] == [room_id]
    assert "secret" not in orjson.dumps(new[0].details).decode()
    enc = remote_event(room_id, MALLORY, "m.room.encrypted",
                       {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AAA",
                        "sender_key": "k", "session_id": "s", "device_id": "D"})
    assert send_txn([enc.pdu]).json() == {"pdus": {enc.event_id: {}}}
    assert enc.event_id in timeline_ids(alice, room_id)


def test_ingesting_a_message_costs_a_bounded_number_of_queries(room, django_assert_max_num_queries):
    """Pinned: a remote message on top of the room's extremities (the common case) is a fixed
    handful of queries, whatever the size of the room's state."""
    from homeserver.services.federation.persist import persist_remote_event

    _, room_id = room
    join_remote(room_id)
    for i in range(30):  # a bigger room state must not cost more
        join_remote(room_id, f"@u{i}:{REMOTE}")
    msg = remote_event(room_id, MALLORY, "m.room.message", {"msgtype": "m.text", "body": "q"})
    with django_assert_max_num_queries(21):  # BEGIN and COMMIT included
        assert persist_remote_event(msg) == "accepted"
