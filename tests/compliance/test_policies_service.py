"""The policies at service level (do_create_room, do_send_event, do_redact) and on the hooks the
federation and media code will call (federation_pdu, join_remote_room), called directly."""

from __future__ import annotations

import json

import pytest

from audit.actions import ActorType
from compliance.hooks import ALLOW, Hook, PolicyDenied, records_policy_denials, register, run
from compliance.hooks import unregister as unregister_policy
from compliance.profiles import MEGOLM
from homeserver.services.events.redact import do_redact
from homeserver.services.events.send import do_send_event
from homeserver.services.rooms.create import do_create_room
from homeserver.storage.rooms import room_version
from homeserver.storage.state import current_state_ids
from tests.accounts.conftest import configure, make_user
from tests.compliance.conftest import assert_one_denial, audit_head, count_events, denials_since

pytestmark = pytest.mark.django_db

SECRET = "confidential findings"
ENCRYPTION = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}


def encrypted_room(user: str, **request) -> str:
    return do_create_room(user, {"initial_state": [ENCRYPTION], **request})


def test_create_room_refused_at_service_level(use_profile):
    use_profile("bwmessenger")
    alice = make_user()
    before, seq = count_events(), audit_head()
    with pytest.raises(PolicyDenied) as e:
        do_create_room(alice, {"name": SECRET})
    assert (e.value.status, e.value.errcode) == (403, "M_FORBIDDEN")
    assert count_events() == before
    d = assert_one_denial(seq, hook="room_create", rule="e2ee_only.unencrypted_room",
                          actor=alice, actor_type="user")
    assert SECRET not in json.dumps(d)


def test_add_mode_at_service_level(use_profile):
    use_profile("bwmessenger", missing_encryption="add")
    alice = make_user()
    room = do_create_room(alice, {})
    assert ("m.room.encryption", "") in current_state_ids(room)


def test_tim_creates_version_10_whatever_the_server_default(use_profile, settings):
    configure(settings, rooms={"default_version": "11"})
    use_profile("ti-m-pro")
    assert room_version(do_create_room(make_user(), {})).identifier == "10"
    use_profile("standard")
    assert room_version(do_create_room(make_user(), {})).identifier == "11"


def test_send_refused_at_service_level(use_profile):
    use_profile("strict")
    alice = make_user()
    room = encrypted_room(alice)
    before, seq = count_events(room), audit_head()
    with pytest.raises(PolicyDenied) as e:
        do_send_event(room_id=room, sender=alice, event_type="m.room.message",
                      content={"msgtype": "m.text", "body": SECRET}, txn_id="t", device_id="D")
    assert (e.value.status, e.value.errcode, e.value.rule) == (403, "M_FORBIDDEN",
                                                               "e2ee_only.plaintext")
    assert count_events(room) == before
    d = assert_one_denial(seq, hook="client_send", rule="e2ee_only.plaintext", actor=alice,
                          target=room, room_id=room, event_type="m.room.message",
                          is_state=False)
    assert SECRET not in json.dumps(d)
    # The refused transaction id was not recorded: the same txn with ciphertext goes through.
    do_send_event(room_id=room, sender=alice, event_type="m.room.encrypted",
                  content={"algorithm": MEGOLM, "ciphertext": "x"}, txn_id="t", device_id="D")
    assert count_events(room) == before + 1


def test_membership_and_other_state_pass_in_e2ee_only_rooms(use_profile):
    use_profile("strict")
    alice, bob = make_user(), make_user()
    room = encrypted_room(alice, invite=[bob])
    seq = audit_head()
    do_send_event(room_id=room, sender=bob, event_type="m.room.member", state_key=bob,
                  content={"membership": "join"})
    do_send_event(room_id=room, sender=alice, event_type="m.room.name", state_key="",
                  content={"name": "Ward 2"})
    assert denials_since(seq) == []


def test_redaction_window_at_service_level(use_profile):
    use_profile("ti-m-epa")
    alice = make_user()
    room = do_create_room(alice, {})
    eid = do_send_event(room_id=room, sender=alice, event_type="m.room.encrypted",
                        content={"algorithm": MEGOLM, "ciphertext": "x"})
    use_profile("ti-m-epa", redaction_window_hours=0)  # off: allowed
    do_redact(room_id=room, sender=alice, event_id=eid, reason=None, device_id=None,
              txn_id=None)
    eid = do_send_event(room_id=room, sender=alice, event_type="m.room.encrypted",
                        content={"algorithm": MEGOLM, "ciphertext": "y"})
    use_profile("ti-m-epa")
    # A window of 24 h seen from 25 h later: age the event in the database.
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT origin_server_ts FROM events WHERE event_id = %s", [eid])
        [ts] = cur.fetchone()
        old = ts - 25 * 3600 * 1000
        cur.execute("UPDATE events SET json = REPLACE(json, %s, %s) WHERE event_id = %s",
                    [f'"origin_server_ts":{ts}', f'"origin_server_ts":{old}', eid])
    before, seq = count_events(room), audit_head()
    with pytest.raises(PolicyDenied) as e:
        do_redact(room_id=room, sender=alice, event_id=eid, reason="typo", device_id=None,
                  txn_id=None)
    assert (e.value.status, e.value.errcode) == (403, "M_FORBIDDEN")
    assert count_events(room) == before
    assert_one_denial(seq, hook="client_send", rule="message_rules.redaction_window",
                      actor=alice, redacts=eid)


def test_a_denial_inside_nested_services_is_audited_once(use_profile):
    use_profile("strict")
    alice = make_user()
    room = encrypted_room(alice)

    @records_policy_denials
    def outer() -> None:
        do_send_event(room_id=room, sender=alice, event_type="m.sticker", content={})

    seq = audit_head()
    with pytest.raises(PolicyDenied):
        outer()
    assert_one_denial(seq, hook="client_send", rule="e2ee_only.plaintext", actor=alice)


# --- federation_pdu and join_remote_room: called the way the federation code will call them.

def pdu(room: str, etype: str, content: dict, state_key: str | None = None) -> dict:
    ev = {"type": etype, "room_id": room, "sender": "@mallory:remote.example",
          "origin_server_ts": 1, "content": content}
    if state_key is not None:
        ev["state_key"] = state_key
    return ev


@records_policy_denials
def ingest(origin: str, event: dict) -> dict:
    """What a federation ingest step does: ask the hook with the remote server as actor."""
    return run(Hook.FEDERATION_PDU, {
        "actor": origin, "actor_type": ActorType.REMOTE_SERVER, "target": event["room_id"],
        "room_id": event["room_id"], "event_type": event["type"],
        "is_state": "state_key" in event, "sender": event["sender"],
    }, value=event)


def test_federation_pdu_refuses_remote_plaintext(use_profile):
    use_profile("strict")
    alice = make_user()
    room = encrypted_room(alice)
    seq = audit_head()
    with pytest.raises(PolicyDenied) as e:
        ingest("remote.example", pdu(room, "m.room.message", {"body": SECRET}))
    assert e.value.rule == "e2ee_only.plaintext"
    d = assert_one_denial(seq, hook="federation_pdu", rule="e2ee_only.plaintext",
                          actor="remote.example", actor_type="remote_server", room_id=room,
                          event_type="m.room.message")
    assert SECRET not in json.dumps(d)
    for ok in (pdu(room, "m.room.encrypted", {"algorithm": MEGOLM, "ciphertext": "x"}),
               pdu(room, "m.room.member", {"membership": "join"}, "@mallory:remote.example"),
               pdu(room, "m.room.redaction", {"redacts": "$old"})):
        assert ingest("remote.example", ok) == ok


@pytest.mark.parametrize(("content", "rule"), [
    ({}, "e2ee_only.weak_encryption"),
    ({"algorithm": MEGOLM, "rotation_period_ms": 1}, "e2ee_only.encryption_change"),
])
def test_federation_pdu_refuses_weakening_encryption(use_profile, content, rule):
    use_profile("strict")
    room = encrypted_room(make_user())
    with pytest.raises(PolicyDenied) as e:
        ingest("remote.example", pdu(room, "m.room.encryption", content, ""))
    assert e.value.rule == rule


def test_federation_pdu_refuses_threads_and_wordy_reactions_under_tim(use_profile):
    use_profile("ti-m-pro")
    room = do_create_room(make_user(), {})
    thread = {"algorithm": MEGOLM, "ciphertext": "x",
              "m.relates_to": {"rel_type": "m.thread", "event_id": "$root"}}
    with pytest.raises(PolicyDenied) as e:
        ingest("remote.example", pdu(room, "m.room.encrypted", thread))
    assert e.value.rule == "message_rules.thread"
    reaction = {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$x", "key": "lol"}}
    with pytest.raises(PolicyDenied) as e:
        ingest("remote.example", pdu(room, "m.reaction", reaction))
    assert e.value.rule == "message_rules.reaction_key"


def test_standard_lets_every_remote_event_through(use_profile):
    use_profile("standard")
    event = pdu("!r:remote.example", "m.room.message", {"body": "hi"})
    assert ingest("remote.example", event) == event


def remote_state(join_rule: str, encryption: dict | None) -> list[dict]:
    """The room state of a remote room, as send_join's `state` or an invite's stripped state."""
    state = [{"type": "m.room.create", "state_key": "", "content": {"room_version": "10"}},
             {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": join_rule}}]
    if encryption is not None:
        state.append({"type": "m.room.encryption", "state_key": "", "content": encryption})
    return state


def join_remote(state: list[dict]) -> list[dict]:
    ctx = {"actor": "@alice:localhost", "target": "!r:remote.example",
           "room_id": "!r:remote.example", "remote_server": "remote.example"}
    return run(Hook.JOIN_REMOTE_ROOM, ctx, value=state)


@pytest.mark.parametrize(("profile", "state", "rule"), [
    ("strict", remote_state("invite", None), "e2ee_only.unencrypted_remote_room"),
    ("strict", remote_state("invite", {}), "e2ee_only.unencrypted_remote_room"),
    ("bwmessenger", remote_state("invite", {"algorithm": "x"}),
     "e2ee_only.unencrypted_remote_room"),
    ("ti-m-pro", remote_state("public", {"algorithm": MEGOLM}), "room_rules.remote_public_room"),
    ("ti-m-epa", remote_state("knock", {"algorithm": MEGOLM}), "room_rules.remote_public_room"),
])
def test_join_remote_room_refusals(use_profile, profile, state, rule):
    use_profile(profile)
    with pytest.raises(PolicyDenied) as e:
        join_remote(state)
    assert (e.value.status, e.value.errcode, e.value.rule) == (403, "M_FORBIDDEN", rule)


@pytest.mark.parametrize("profile", ["standard", "strict", "ti-m-pro", "ti-m-epa"])
def test_join_remote_encrypted_invite_only_room_is_allowed(use_profile, profile):
    use_profile(profile)
    state = remote_state("invite", {"algorithm": MEGOLM})
    assert join_remote(state) == state


def test_activating_a_profile_leaves_other_registrations_alone(use_profile):
    def other_policy(ctx: dict) -> object:
        return ALLOW

    register(Hook.INVITE, other_policy)
    try:
        use_profile("ti-m-epa")
        use_profile("standard")
        from compliance.hooks import _registry

        assert _registry[Hook.INVITE] == [other_policy]
        assert _registry[Hook.CLIENT_SEND] == []
    finally:
        unregister_policy(Hook.INVITE, other_policy)
