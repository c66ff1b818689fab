"""A room shared by a real Synapse and Palisade, cut apart and healed.

While the two servers cannot reach each other (Palisade's operator adds a deny entry for the
Synapse: it refuses Synapse's requests with 403 and sends it nothing), each side changes the
room: conflicting names and different topics. When the entry is removed, the next events carry
the branches across (get_missing_events, state_ids), state resolution v2 runs on both sides, and
they must agree on the full state, event id by event id. History from before Palisade joined
is readable through /messages (backfill). Room versions 10 and 12 (v12: state resolution v2.1).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import quote

import pytest

from tests.federation.peers import palisade_peer_fixture  # noqa: F401 - fixture
from tests.federation.synapse import synapse_fixture  # noqa: F401 - fixture
from tests.live_server import REPO_ROOT

pytestmark = [pytest.mark.live]

BOUND_S = 60.0


def wait_for(what: str, check, bound: float = BOUND_S):
    deadline = time.monotonic() + bound
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def operator_shell(peer, code: str) -> None:
    """Run Django code against the live Palisade's database, as its operator would."""
    env = {**os.environ, "PALISADE_CONFIG": str(peer.server.config_path)}
    env.pop("PALISADE_DATABASE_URL", None)
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO_ROOT, env=env,
                   check=True, capture_output=True, timeout=120)


def set_denied(peer, server: str, denied: bool) -> None:
    code = ("from compliance.models import FederationListEntry as E; "
            + (f"E.objects.create(kind='deny', server={server!r}, note='partition test')"
               if denied else f"E.objects.filter(server={server!r}).delete()"))
    operator_shell(peer, code)
    time.sleep(3)  # every process re-reads the lists within 2 s (compliance/federation_lists)


def state_map(client, room: str) -> dict:
    events = client.get(f"/_matrix/client/v3/rooms/{quote(room)}/state")
    return {(e["type"], e.get("state_key")): e["event_id"] for e in events}


def send_text(client, room: str, body: str) -> str:
    txn = f"t{time.monotonic_ns()}"
    return client.put(f"/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/{txn}",
                      {"msgtype": "m.text", "body": body})["event_id"]


def put_state(client, room: str, etype: str, content: dict) -> str:
    return client.put(f"/_matrix/client/v3/rooms/{quote(room)}/state/{etype}/", content)["event_id"]


def bodies(client, room: str) -> list[str]:
    chunk = client.get(f"/_matrix/client/v3/rooms/{quote(room)}/messages",
                       params={"dir": "b", "limit": "100"})["chunk"]
    return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]


@pytest.mark.parametrize("room_version", ["10", "12"])
def test_partitioned_servers_agree_again(synapse, palisade_peer, room_version):
    tag = f"v{room_version}-{time.monotonic_ns()}"
    alice = synapse.client(synapse.register_user(f"alice{tag}".replace("-", ""), "pw-alice-1"))
    bob = palisade_peer.register(f"bob{tag}".replace("-", ""), "pw-bob-1")
    room = alice.post("/_matrix/client/v3/createRoom",
                      {"preset": "private_chat", "room_version": room_version,
                       "name": "before"})["room_id"]
    for i in range(3):
        send_text(alice, room, f"history {i}")
    alice.post(f"/_matrix/client/v3/rooms/{quote(room)}/invite", {"user_id": bob.user_id})
    wait_for("the invite on Palisade", lambda: room in bob.get(
        "/_matrix/client/v3/sync", params={"timeout": "0"})["rooms"]["invite"])
    bob.post(f"/_matrix/client/v3/join/{quote(room)}", {},
             params={"server_name": synapse.server_name})
    # Pre-join history comes through backfill, oldest last when paging backwards.
    assert wait_for("backfilled history", lambda: [b for b in bodies(bob, room)
                                                  if b.startswith("history")]) == [
        "history 2", "history 1", "history 0"]
    pl = alice.get(f"/_matrix/client/v3/rooms/{quote(room)}/state/m.room.power_levels/")
    pl["users"][bob.user_id] = 100
    put_state(alice, room, "m.room.power_levels", pl)
    wait_for("Bob's power on Palisade", lambda: bob.get(
        f"/_matrix/client/v3/rooms/{quote(room)}/state/m.room.power_levels/")["users"].get(
            bob.user_id) == 100)
    wait_for("the same state before the partition",
             lambda: state_map(alice, room) == state_map(bob, room))

    set_denied(palisade_peer, synapse.server_name, True)
    try:
        put_state(alice, room, "m.room.name", {"name": "synapse side"})
        put_state(alice, room, "m.room.topic", {"topic": "set on synapse"})
        put_state(bob, room, "m.room.name", {"name": "palisade side"})
        bob_only = send_text(bob, room, "during the partition")
        time.sleep(2)
        assert state_map(alice, room) != state_map(bob, room)  # they really were apart
    finally:
        set_denied(palisade_peer, synapse.server_name, False)

    # New events after the heal carry each branch to the other side.
    after_b = send_text(bob, room, "after, from palisade")
    after_a = send_text(alice, room, "after, from synapse")

    def converged():
        a, b = state_map(alice, room), state_map(bob, room)
        return a == b and a

    final = wait_for("both sides to agree on the full state", converged)
    assert ("m.room.topic", "") in final  # Synapse's branch reached Palisade
    name_a = alice.get(f"/_matrix/client/v3/rooms/{quote(room)}/state/m.room.name/")["name"]
    name_b = bob.get(f"/_matrix/client/v3/rooms/{quote(room)}/state/m.room.name/")["name"]
    assert name_a == name_b in ("synapse side", "palisade side")
    seen_by_alice = wait_for("Palisade's messages on Synapse", lambda: {
        "during the partition", "after, from palisade"} <= set(bodies(alice, room)))
    assert seen_by_alice
    wait_for("Synapse's message on Palisade",
             lambda: "after, from synapse" in bodies(bob, room))
    assert after_a and after_b and bob_only
