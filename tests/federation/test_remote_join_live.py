"""Joins, invites and leaves across real servers: two live Palisades federating over loopback
TLS, then a real Synapse. Each server is a `palisade serve` (or Synapse) subprocess; the tests
act only through the client-server API, as users of each server would."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from tests.federation.peers import PalisadePeer, start_palisade_peer
from tests.federation.synapse import ClientAPI, synapse_fixture  # noqa: F401 - fixture synapse

pytestmark = [pytest.mark.live]

C = "/_matrix/client/v3"
WAIT_S = 90
MEGOLM = {"algorithm": "m.megolm.v1.aes-sha2"}


@pytest.fixture(scope="module")
def peer_a(tmp_path_factory):
    peer = start_palisade_peer(tmp_path_factory.mktemp("peer-a"))
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def peer_b(tmp_path_factory):
    peer = start_palisade_peer(tmp_path_factory.mktemp("peer-b"))
    yield peer
    peer.stop()


def q(s: str) -> str:
    return quote(s, safe="")


def user(peer: Any, name: str) -> ClientAPI:
    localpart = f"{name}-{uuid.uuid4().hex[:6]}"
    if isinstance(peer, PalisadePeer):
        return peer.register(localpart, "a long password 123")
    return peer.client(peer.register_user(localpart, "a long password 123"))


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Poll until probe() returns something truthy (servers under load: generous timeout)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def sync(client: ClientAPI, since: str | None = None) -> dict:
    params = {"timeout": "0"} | ({"since": since} if since else {})
    return client.get(C + "/sync", params=params)


def membership_on(client: ClientAPI, room_id: str, user_id: str) -> str | None:
    r = client.get(C + f"/rooms/{q(room_id)}/state/m.room.member/{q(user_id)}", expect=None)
    return r.json().get("membership") if r.status_code == 200 else None


def timeline_bodies(client: ClientAPI, room_id: str) -> list[str]:
    r = client.get(C + f"/rooms/{q(room_id)}/messages", params={"dir": "b", "limit": "50"})
    return [e["content"].get("body") for e in r["chunk"] if e["type"] == "m.room.message"]


def state_types(room: dict) -> set[tuple[str, str]]:
    events = room["state"]["events"] + room["timeline"]["events"]
    return {(e["type"], e.get("state_key")) for e in events if "state_key" in e}


def test_invite_across_join_and_talk_both_ways(peer_a, peer_b):
    alice, bob = user(peer_a, "alice"), user(peer_b, "bob")
    room_id = alice.post(C + "/createRoom", {"preset": "private_chat", "name": "Ward 7",
                                             "invite": [bob.user_id]})["room_id"]
    # Bob's server co-signed the invite; Bob sees it with the room's stripped state.
    invite = wait_for("the invite in bob's sync",
                      lambda: sync(bob)["rooms"]["invite"].get(room_id))
    stripped = {(e["type"], e["state_key"]): e["content"] for e in invite["invite_state"]["events"]}
    assert stripped[("m.room.name", "")] == {"name": "Ward 7"}
    assert stripped[("m.room.member", bob.user_id)]["membership"] == "invite"
    assert membership_on(alice, room_id, bob.user_id) == "invite"
    assert room_id not in bob.get(C + "/joined_rooms")["joined_rooms"]

    assert bob.post(C + f"/rooms/{q(room_id)}/join")["room_id"] == room_id
    assert room_id in bob.get(C + "/joined_rooms")["joined_rooms"]
    joined = sync(bob)["rooms"]["join"][room_id]
    assert {("m.room.create", ""), ("m.room.name", ""), ("m.room.member", alice.user_id),
            ("m.room.member", bob.user_id)} <= state_types(joined)
    assert membership_on(alice, room_id, bob.user_id) == "join"  # send_join was accepted

    alice.put(C + f"/rooms/{q(room_id)}/send/m.room.message/t1",
              {"msgtype": "m.text", "body": "hello from A"})
    wait_for("alice's message on B", lambda: "hello from A" in timeline_bodies(bob, room_id))
    bob.put(C + f"/rooms/{q(room_id)}/send/m.room.message/t2",
            {"msgtype": "m.text", "body": "hello from B"})
    wait_for("bob's message on A", lambda: "hello from B" in timeline_bodies(alice, room_id))

    # Leaving a remote room is an ordinary leave event, sent on by the outbound queue.
    bob.post(C + f"/rooms/{q(room_id)}/leave")
    wait_for("bob's leave on A", lambda: membership_on(alice, room_id, bob.user_id) == "leave")

    # Back again: B still holds the room's old state; the new join goes through A as before.
    alice.put(C + f"/rooms/{q(room_id)}/state/m.room.topic", {"topic": "while bob was away"})
    alice.post(C + f"/rooms/{q(room_id)}/invite", {"user_id": bob.user_id})
    wait_for("the second invite", lambda: room_id in sync(bob)["rooms"]["invite"])
    assert bob.post(C + f"/join/{q(room_id)}")["room_id"] == room_id
    assert membership_on(alice, room_id, bob.user_id) == "join"
    assert bob.get(C + f"/rooms/{q(room_id)}/state/m.room.topic/")["topic"] == "while bob was away"
    bob.put(C + f"/rooms/{q(room_id)}/send/m.room.message/t3",
            {"msgtype": "m.text", "body": "back on B"})
    wait_for("bob's message after rejoining", lambda: "back on B" in timeline_bodies(alice, room_id))


def test_join_public_room_by_alias_on_another_server(peer_a, peer_b):
    alice, bob = user(peer_a, "alice"), user(peer_b, "bob")
    name = f"lobby-{uuid.uuid4().hex[:6]}"
    room_id = alice.post(C + "/createRoom", {"preset": "public_chat", "room_alias_name": name,
                                             "name": "Lobby"})["room_id"]
    alias = f"#{name}:{peer_a.server_name}"
    assert bob.post(C + f"/join/{q(alias)}")["room_id"] == room_id
    assert membership_on(alice, room_id, bob.user_id) == "join"
    assert bob.get(C + f"/rooms/{q(room_id)}/state/m.room.name/")["name"] == "Lobby"
    # Joining again is a no-op that succeeds; an unknown alias is 404.
    assert bob.post(C + f"/join/{q(alias)}")["room_id"] == room_id
    r = bob.post(C + f"/join/{q('#nope-' + name + ':' + peer_a.server_name)}", expect=404)
    assert r["errcode"] == "M_NOT_FOUND"


def test_invite_only_room_refuses_uninvited_remote_join(peer_a, peer_b):
    alice, bob = user(peer_a, "alice"), user(peer_b, "bob")
    room_id = alice.post(C + "/createRoom", {"preset": "private_chat"})["room_id"]
    r = bob.post(C + f"/join/{q(room_id)}", params={"via": peer_a.server_name}, expect=403)
    assert r["errcode"] == "M_FORBIDDEN"
    assert room_id not in bob.get(C + "/joined_rooms")["joined_rooms"]
    assert membership_on(alice, room_id, bob.user_id) is None


def test_reject_invite_across(peer_a, peer_b):
    alice, carol = user(peer_a, "alice"), user(peer_b, "carol")
    room_id = alice.post(C + "/createRoom", {"preset": "private_chat"})["room_id"]
    alice.post(C + f"/rooms/{q(room_id)}/invite", {"user_id": carol.user_id})
    first = wait_for("the invite", lambda: (s := sync(carol))["rooms"]["invite"].get(room_id)
                     and s)
    carol.post(C + f"/rooms/{q(room_id)}/leave", {"reason": "not now"})
    # The inviting server took the rejection (make_leave/send_leave)...
    assert membership_on(alice, room_id, carol.user_id) == "leave"
    # ... and Carol's next sync moves the room from invite to leave.
    later = sync(carol, first["next_batch"])
    assert room_id in later["rooms"]["leave"] and room_id not in later["rooms"]["invite"]


def test_knock_across_then_invited_and_joins(peer_a, peer_b):
    alice, bob = user(peer_a, "alice"), user(peer_b, "bob")
    room_id = alice.post(C + "/createRoom", {"preset": "private_chat", "name": "Clinic",
                                             "initial_state": [
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]})[
        "room_id"]
    assert bob.post(C + f"/knock/{q(room_id)}", {"reason": "on call"},
                    params={"via": peer_a.server_name})["room_id"] == room_id
    assert membership_on(alice, room_id, bob.user_id) == "knock"
    knock = sync(bob)["rooms"]["knock"][room_id]["knock_state"]["events"]
    assert {"m.room.name", "m.room.join_rules", "m.room.member"} <= {e["type"] for e in knock}
    # Alice lets Bob in: the invite reaches Bob's server, Bob joins through Alice's.
    alice.post(C + f"/rooms/{q(room_id)}/invite", {"user_id": bob.user_id})
    wait_for("the invite after the knock", lambda: room_id in sync(bob)["rooms"]["invite"])
    assert bob.post(C + f"/join/{q(room_id)}")["room_id"] == room_id
    assert membership_on(alice, room_id, bob.user_id) == "join"


def audit_rules(peer: PalisadePeer) -> list[str]:
    """The rules of the POLICY_DENIED audit records in the peer's own database."""
    url = peer.server.database_url
    sql = "SELECT details FROM audit_record WHERE action = 4001 ORDER BY seq"
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            rows = [r[0] for r in db.execute(sql)]
    else:
        import psycopg

        with psycopg.connect(url) as db:
            rows = [r[0] for r in db.execute(sql)]
    import json

    return [(r if isinstance(r, dict) else json.loads(r)).get("rule") for r in rows]


def test_e2ee_only_server_refuses_unencrypted_remote_rooms(peer_a, tmp_path):
    strict = start_palisade_peer(tmp_path, compliance_profile="strict")
    try:
        alice, dave = user(peer_a, "alice"), user(strict, "dave")
        plain = alice.post(C + "/createRoom", {"preset": "public_chat"})["room_id"]
        r = dave.post(C + f"/join/{q(plain)}", params={"via": peer_a.server_name}, expect=403)
        assert r["errcode"] == "M_FORBIDDEN" and "encrypted" in r["error"]
        assert plain not in dave.get(C + "/joined_rooms")["joined_rooms"]
        assert audit_rules(strict).count("e2ee_only.unencrypted_remote_room") == 1
        # Dave's server undid the join it had made on A.
        wait_for("dave's leave on A",
                 lambda: membership_on(alice, plain, dave.user_id) == "leave")
        encrypted = alice.post(C + "/createRoom", {"preset": "public_chat", "initial_state": [
            {"type": "m.room.encryption", "state_key": "", "content": MEGOLM}]})["room_id"]
        assert dave.post(C + f"/join/{q(encrypted)}",
                         params={"via": peer_a.server_name})["room_id"] == encrypted
        assert membership_on(alice, encrypted, dave.user_id) == "join"
    finally:
        strict.stop()


# --------------------------------------------------------------------------- real Synapse


def test_synapse_user_invites_palisade_user_who_joins(synapse, peer_a):
    sam, erin = user(synapse, "sam"), user(peer_a, "erin")
    room_id = sam.post(C + "/createRoom", {"preset": "private_chat", "name": "Interop"})[
        "room_id"]
    sam.post(C + f"/rooms/{q(room_id)}/invite", {"user_id": erin.user_id})
    invite = wait_for("synapse's invite on palisade",
                      lambda: sync(erin)["rooms"]["invite"].get(room_id))
    names = [e["content"].get("name") for e in invite["invite_state"]["events"]
             if e["type"] == "m.room.name"]
    assert names == ["Interop"]
    assert erin.post(C + f"/rooms/{q(room_id)}/join")["room_id"] == room_id
    joined = sync(erin)["rooms"]["join"][room_id]
    assert ("m.room.member", sam.user_id) in state_types(joined)
    wait_for("erin joined on synapse",
             lambda: erin.user_id in sam.get(C + f"/rooms/{q(room_id)}/joined_members")[
                 "joined"])


def test_palisade_user_joins_synapse_room_by_alias(synapse, peer_a):
    sam, fay = user(synapse, "sam"), user(peer_a, "fay")
    name = f"interop-{uuid.uuid4().hex[:6]}"
    room_id = sam.post(C + "/createRoom", {"preset": "public_chat", "room_alias_name": name})[
        "room_id"]
    alias = f"#{name}:{synapse.server_name}"
    assert fay.post(C + f"/join/{q(alias)}")["room_id"] == room_id
    wait_for("fay joined on synapse",
             lambda: fay.user_id in sam.get(C + f"/rooms/{q(room_id)}/joined_members")[
                 "joined"])
    sam.put(C + f"/rooms/{q(room_id)}/send/m.room.message/s1",
            {"msgtype": "m.text", "body": "hello from synapse"})
    wait_for("synapse's message on palisade",
             lambda: "hello from synapse" in timeline_bodies(fay, room_id))


def test_palisade_user_invites_synapse_user_who_joins(synapse, peer_a):
    gus, sam = user(peer_a, "gus"), user(synapse, "sam")
    room_id = gus.post(C + "/createRoom", {"preset": "private_chat"})["room_id"]
    gus.post(C + f"/rooms/{q(room_id)}/invite", {"user_id": sam.user_id})
    wait_for("palisade's invite on synapse",
             lambda: room_id in sync(sam)["rooms"]["invite"])
    sam.post(C + f"/rooms/{q(room_id)}/join")
    wait_for("sam joined on palisade",
             lambda: membership_on(gus, room_id, sam.user_id) == "join")


def test_synapse_user_rejects_palisade_invite(synapse, peer_a):
    gus, sam = user(peer_a, "gus"), user(synapse, "sam")
    room_id = gus.post(C + "/createRoom", {"preset": "private_chat"})["room_id"]
    gus.post(C + f"/rooms/{q(room_id)}/invite", {"user_id": sam.user_id})
    wait_for("palisade's invite on synapse", lambda: room_id in sync(sam)["rooms"]["invite"])
    sam.post(C + f"/rooms/{q(room_id)}/leave")  # Synapse: make_leave/send_leave to us
    wait_for("sam's rejection on palisade",
             lambda: membership_on(gus, room_id, sam.user_id) == "leave")


def test_synapse_user_knocks_on_palisade_room_and_palisade_user_on_synapse_room(synapse, peer_a):
    gus, sam = user(peer_a, "gus"), user(synapse, "sam")
    knock_rules = [{"type": "m.room.join_rules", "state_key": "",
                    "content": {"join_rule": "knock"}}]
    ours = gus.post(C + "/createRoom", {"preset": "private_chat",
                                        "initial_state": knock_rules})["room_id"]
    sam.post(C + f"/knock/{q(ours)}", {"reason": "hi"}, params={"via": peer_a.server_name})
    assert membership_on(gus, ours, sam.user_id) == "knock"
    theirs = sam.post(C + "/createRoom", {"preset": "private_chat", "name": "Synapse clinic",
                                          "initial_state": knock_rules})["room_id"]
    gus.post(C + f"/knock/{q(theirs)}", params={"via": synapse.server_name})
    knock = sync(gus)["rooms"]["knock"][theirs]["knock_state"]["events"]
    assert any(e["type"] == "m.room.name" and e["content"]["name"] == "Synapse clinic"
               for e in knock)
    wait_for("gus's knock on synapse", lambda: membership_on(sam, theirs, gus.user_id) == "knock")
