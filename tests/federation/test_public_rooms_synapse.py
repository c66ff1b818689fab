"""Public rooms and the federation lists against a real Synapse (1.163): a Synapse user browses a
Palisade's room directory through Synapse (`GET /publicRooms?server=<palisade>`, which makes
Synapse call our `/_matrix/federation/v1/publicRooms`); a TI-M Palisade refuses to publish it
(A_26515-01, A_26520); and a deny entry a Compliance officer adds in the admin cuts Synapse off
(A_25534), audited with the rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from compliance.federation_lists import CHECK_SECONDS
from tests.compliance.test_federation_lists_live import admin_add_deny_entry, make_officer
from tests.federation.peers import start_palisade_peer
from tests.federation.synapse import synapse_fixture  # noqa: F401 - fixture synapse
from tests.live_server import REPO_ROOT

pytestmark = pytest.mark.live
PASSWORD = "a long and proper password"
ENCRYPTION = {"type": "m.room.encryption", "state_key": "",
              "content": {"algorithm": "m.megolm.v1.aes-sha2"}}


def audit_rules(peer) -> list[list]:
    """[action, actor, rule] of the peer's audit records (read from its database)."""
    code = ("import json\nfrom audit.models import AuditRecord\n"
            "print(json.dumps([[r.action, r.actor, r.details_dict.get('rule', '')]"
            " for r in AuditRecord.objects.order_by('seq')]))\n")
    env = {**os.environ, "PALISADE_CONFIG": str(peer.server.config_path),
           "PALISADE_DATABASE_URL": peer.server.database_url}
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO_ROOT,
                         env=env, check=True, capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def publish_room(peer, name: str) -> str:
    owner = peer.register("owner", PASSWORD)
    return owner.post("/_matrix/client/v3/createRoom", {
        "preset": "public_chat", "visibility": "public", "name": name,
        "initial_state": [ENCRYPTION]})["room_id"]


def browse(synapse, user: dict, server: str, limit: int):
    return synapse.client(user).request(
        "GET", "/_matrix/client/v3/publicRooms", params={"server": server, "limit": limit},
        expect=None)


def test_synapse_browses_our_directory_until_an_officer_denies_it(synapse, tmp_path):
    peer = start_palisade_peer(tmp_path)
    try:
        room = publish_room(peer, "Cardiology lounge")
        bob = synapse.register_user("bob", PASSWORD)
        r = browse(synapse, bob, peer.server_name, 10)
        assert r.status_code == 200, r.text
        chunk = r.json()["chunk"]
        assert [(e["room_id"], e["name"], e["num_joined_members"]) for e in chunk] == [
            (room, "Cardiology lounge", 1)]

        make_officer(peer.server, "officer")
        admin_add_deny_entry(peer.server, "officer", synapse.server_name)
        # The entry applies in every process of the peer within CHECK_SECONDS (the federation
        # listener is another process than the admin's).
        time.sleep(CHECK_SECONDS + 0.5)
        # A different limit: Synapse caches remote directory answers per request.
        r = browse(synapse, bob, peer.server_name, 11)
        assert r.status_code != 200, r.text
        from audit.actions import AuditAction

        assert [AuditAction.POLICY_DENIED, synapse.server_name, "federation.deny_list"] \
            in audit_rules(peer)
    finally:
        peer.stop()


def test_tim_palisade_does_not_publish_its_directory_to_synapse(synapse, tmp_path):
    peer = start_palisade_peer(tmp_path, compliance_profile="ti-m-pro")
    try:
        publish_room(peer, "Station 3")
        carol = synapse.register_user("carol", PASSWORD)
        r = browse(synapse, carol, peer.server_name, 10)
        assert r.status_code != 200, r.text  # Synapse passes on our refusal
        from audit.actions import AuditAction

        assert [AuditAction.POLICY_DENIED, synapse.server_name,
                "room_rules.federation_public_rooms"] in audit_rules(peer)
    finally:
        peer.stop()
