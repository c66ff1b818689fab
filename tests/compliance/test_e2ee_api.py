"""E2EE-only over the client API: what a client sees (status + errcode), that a refused event or
room is not stored, and that each refusal leaves exactly one audit record without content."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from compliance.profiles import MEGOLM
from tests.compliance.client import (
    CIPHERTEXT,
    assert_error,
    encrypted_room,
    put_state,
    send,
    session,
)
from tests.compliance.conftest import (
    aassert_one_denial,
    aaudit_head,
    acount_events,
    adenials_since,
)

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "patient Meyer, room 12, diagnosis"


async def test_strict_refuses_an_unencrypted_room_and_stores_nothing(api, use_profile):
    use_profile("strict")
    alice, tok = await session(api)
    before, seq = await acount_events(), await aaudit_head()
    r = await api.call("POST", "/createRoom", {"name": SECRET}, token=tok)
    assert_error(r, 403, "M_FORBIDDEN")
    assert "encrypt" in r.json()["error"]
    assert await acount_events() == before
    d = await aassert_one_denial(seq, hook="room_create", rule="e2ee_only.unencrypted_room",
                                 actor=alice)
    assert SECRET not in json.dumps(d)
    joined = await api.call("GET", "/joined_rooms", token=tok)
    assert joined.json()["joined_rooms"] == []


@pytest.mark.parametrize("content", [{}, {"algorithm": "m.olm.v1.curve25519-aes-sha2"}])
async def test_weak_encryption_at_creation_is_refused(api, use_profile, content):
    use_profile("strict")
    alice, tok = await session(api)
    before, seq = await acount_events(), await aaudit_head()
    r = await api.call("POST", "/createRoom", {"initial_state": [
        {"type": "m.room.encryption", "state_key": "", "content": content}]}, token=tok)
    assert_error(r, 403, "M_FORBIDDEN")
    assert await acount_events() == before
    await aassert_one_denial(seq, hook="room_create", rule="e2ee_only.weak_encryption",
                             actor=alice)


async def test_add_mode_creates_the_room_encrypted(api, use_profile):
    use_profile("strict", missing_encryption="add")
    _, tok = await session(api)
    seq = await aaudit_head()
    r = await api.call("POST", "/createRoom", {"name": "Ward 3"}, token=tok)
    assert r.status_code == 200, r.json()
    room = r.json()["room_id"]
    state = await api.call("GET", f"/rooms/{room}/state/m.room.encryption", token=tok)
    assert state.status_code == 200 and state.json() == {"algorithm": MEGOLM}
    assert await adenials_since(seq) == []



PLAINTEXT = [
    ("m.room.message", {"msgtype": "m.text", "body": SECRET}),
    ("m.sticker", {"body": SECRET, "url": "mxc://x/y", "info": {}}),
    ("m.poll.start", {"m.text": SECRET}),
    ("org.matrix.msc3381.poll.start", {"org.matrix.msc3381.poll.start": {"question": SECRET}}),
    ("m.call.invite", {"call_id": "c", "offer": {"sdp": SECRET}, "version": "1"}),
    ("m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$x",
                                     "key": SECRET}}),
    ("com.example.custom", {"note": SECRET}),
]


async def test_plaintext_content_is_refused_stored_nowhere_and_audited(api, use_profile):
    use_profile("strict")
    alice, tok = await session(api)
    room = await encrypted_room(api, tok)
    for i, (etype, content) in enumerate(PLAINTEXT):
        before, seq = await acount_events(room), await aaudit_head()
        r = await send(api, tok, room, etype, content, f"t{i}")
        assert_error(r, 403, "M_FORBIDDEN")
        assert "encrypted" in r.json()["error"]
        assert await acount_events(room) == before, etype
        d = await aassert_one_denial(seq, hook="client_send", rule="e2ee_only.plaintext",
                                     actor=alice, target=room, room_id=room, event_type=etype)
        assert SECRET not in json.dumps(d)
    msgs = (await api.call("GET", f"/rooms/{room}/messages?dir=b&limit=50", token=tok)).json()
    assert not {e for e, _ in PLAINTEXT} & {e["type"] for e in msgs["chunk"]}


async def test_plaintext_disguised_as_state_is_refused(api, use_profile):
    use_profile("strict")
    alice, tok = await session(api)
    room = await encrypted_room(api, tok)
    before, seq = await acount_events(room), await aaudit_head()
    r = await put_state(api, tok, room, "m.room.message", {"msgtype": "m.text", "body": SECRET},
                        key="x")
    assert_error(r, 403, "M_FORBIDDEN")
    assert await acount_events(room) == before
    await aassert_one_denial(seq, hook="client_send", rule="e2ee_only.plaintext_state",
                             actor=alice, room_id=room, event_type="m.room.message",
                             is_state=True)


async def test_encrypted_events_state_and_redactions_pass(api, use_profile):
    use_profile("strict")
    _, tok = await session(api)
    room = await encrypted_room(api, tok)
    seq = await aaudit_head()
    r = await send(api, tok, room, "m.room.encrypted", CIPHERTEXT, "e1")
    assert r.status_code == 200, r.json()
    eid = r.json()["event_id"]
    ev = (await api.call("GET", f"/rooms/{room}/event/{eid}", token=tok)).json()
    assert ev["type"] == "m.room.encrypted" and ev["content"]["ciphertext"] == "AwgAEnAC"
    assert (await put_state(api, tok, room, "m.room.topic", {"topic": "Ward 3"})).status_code \
        == 200
    r = await api.call("PUT", f"/rooms/{room}/redact/{quote(eid)}/r1", {}, token=tok)
    assert r.status_code == 200, r.json()
    assert await adenials_since(seq) == []


async def test_redactions_need_the_allow_list(api, use_profile):
    use_profile("strict", cleartext_allowlist=[])
    alice, tok = await session(api)
    room = await encrypted_room(api, tok)
    eid = (await send(api, tok, room, "m.room.encrypted", CIPHERTEXT, "e1")).json()["event_id"]
    before, seq = await acount_events(room), await aaudit_head()
    r = await api.call("PUT", f"/rooms/{room}/redact/{quote(eid)}/r1", {"reason": SECRET},
                       token=tok)
    assert_error(r, 403, "M_FORBIDDEN")
    assert await acount_events(room) == before
    d = await aassert_one_denial(seq, hook="client_send", rule="e2ee_only.plaintext",
                                 actor=alice, event_type="m.room.redaction", redacts=eid)
    assert SECRET not in json.dumps(d)


async def test_encryption_cannot_be_removed_weakened_or_changed(api, use_profile):
    use_profile("strict")
    alice, tok = await session(api)
    room = await encrypted_room(api, tok)
    for content, rule in [
        ({}, "e2ee_only.weak_encryption"),
        ({"algorithm": "m.olm.v1.curve25519-aes-sha2"}, "e2ee_only.weak_encryption"),
        ({"algorithm": MEGOLM, "rotation_period_msgs": 1000000}, "e2ee_only.encryption_change"),
    ]:
        before, seq = await acount_events(room), await aaudit_head()
        r = await put_state(api, tok, room, "m.room.encryption", content)
        assert_error(r, 403, "M_FORBIDDEN")
        assert await acount_events(room) == before
        await aassert_one_denial(seq, hook="client_send", rule=rule, actor=alice,
                                 room_id=room, event_type="m.room.encryption")
    state = await api.call("GET", f"/rooms/{room}/state/m.room.encryption", token=tok)
    assert state.json() == {"algorithm": MEGOLM}
    # Sending the same settings again changes nothing and is allowed.
    assert (await put_state(api, tok, room, "m.room.encryption",
                            {"algorithm": MEGOLM})).status_code == 200


async def test_the_encryption_event_cannot_be_redacted(api, use_profile):
    use_profile("strict")
    alice, tok = await session(api)
    room = await encrypted_room(api, tok)
    enc = (await api.call("GET", f"/rooms/{room}/state", token=tok)).json()
    [enc_id] = [e["event_id"] for e in enc if e["type"] == "m.room.encryption"]
    before, seq = await acount_events(room), await aaudit_head()
    r = await api.call("PUT", f"/rooms/{room}/redact/{quote(enc_id)}/r1", {}, token=tok)
    assert_error(r, 403, "M_FORBIDDEN")
    assert await acount_events(room) == before
    await aassert_one_denial(seq, hook="client_send", rule="e2ee_only.encryption_redaction",
                             actor=alice, redacts=enc_id)


async def test_an_old_unencrypted_room_can_be_encrypted_but_not_used_in_plaintext(
        api, use_profile):
    use_profile("standard")
    _, tok = await session(api)
    room = (await api.call("POST", "/createRoom", {}, token=tok)).json()["room_id"]
    use_profile("strict")
    r = await send(api, tok, room, "m.room.message", {"msgtype": "m.text", "body": "x"}, "a")
    assert_error(r, 403, "M_FORBIDDEN")
    r = await put_state(api, tok, room, "m.room.encryption", {"algorithm": MEGOLM})
    assert r.status_code == 200, r.json()


async def test_standard_profile_allows_plaintext_and_unencrypted_rooms(api, use_profile):
    active = use_profile("standard")
    assert active.policies == ()
    _, tok = await session(api)
    seq = await aaudit_head()
    r = await api.call("POST", "/createRoom", {}, token=tok)
    assert r.status_code == 200, r.json()
    room = r.json()["room_id"]
    r = await send(api, tok, room, "m.room.message", {"msgtype": "m.text", "body": "hi"}, "a")
    assert r.status_code == 200, r.json()
    r = await put_state(api, tok, room, "m.room.encryption", {"algorithm": "anything"})
    assert r.status_code == 200, r.json()
    assert await adenials_since(seq) == []
