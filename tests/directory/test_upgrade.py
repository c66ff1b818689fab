"""Room upgrades over HTTP: the replacement room, what moves with it, the tombstone, and the
refusals (each leaving the old room untouched and nothing stored)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from audit.actions import AuditAction
from compliance import hooks
from compliance.hooks import Deny, Hook
from homeserver.models import Room
from tests.accounts.conftest import aaudit_head, aaudit_since
from tests.directory.helpers import (
    assert_error,
    audited,
    hs,
    join,
    new_room,
    put_state,
    q,
    session,
    snapshot,
    state,
)

pytestmark = pytest.mark.django_db(transaction=True)

ENCRYPTION = {"algorithm": "m.megolm.v1.aes-sha2"}


async def full_state(api, token: str, room_id: str) -> dict[tuple[str, str], dict]:
    r = await api.call("GET", f"/rooms/{q(room_id)}/state", token=token)
    assert r.status_code == 200, r.json()
    return {(e["type"], e["state_key"]): e for e in r.json()}


async def ward(api, version: str = "10"):
    """A published v10 room with name, topic, avatar, encryption, ACL, two aliases, a
    moderator (Bob), a plain member (Carol) and a banned user (Mallory)."""
    alice, a_tok = await session(api)
    bob, b_tok = await session(api)
    carol, c_tok = await session(api)
    mallory, _ = await session(api)
    room = await new_room(api, a_tok, room_version=version, preset="public_chat",
                          visibility="public", name="Ward 7", topic="Night handover",
                          room_alias_name="ward7")
    await put_state(api, a_tok, room, "m.room.avatar", {"url": "mxc://example.org/ward"})
    await put_state(api, a_tok, room, "m.room.encryption", ENCRYPTION)
    await put_state(api, a_tok, room, "m.room.server_acl", {"allow": ["*"], "deny": []})
    await join(api, b_tok, room)
    await join(api, c_tok, room)
    pl = (await state(api, a_tok, room, "m.room.power_levels")).json()
    pl["users"][bob] = 50
    assert (await put_state(api, a_tok, room, "m.room.power_levels", pl)).status_code == 200
    r = await api.call("POST", f"/rooms/{q(room)}/ban", {"user_id": mallory}, token=a_tok)
    assert r.status_code == 200
    await api.call("PUT", f"/directory/room/{q('#ward7-alt:' + hs())}", {"room_id": room},
                   token=a_tok)
    content = {"alias": f"#ward7:{hs()}", "alt_aliases": [f"#ward7-alt:{hs()}"]}
    assert (await put_state(api, a_tok, room, "m.room.canonical_alias", content)
            ).status_code == 200
    r = await api.call("PUT", f"/user/{q(alice)}/rooms/{q(room)}/tags/m.favourite",
                       {"order": 0.25}, token=a_tok)
    assert r.status_code == 200
    r = await api.call("PUT", f"/user/{q(carol)}/rooms/{q(room)}/tags/u.night", {},
                       token=c_tok)
    assert r.status_code == 200
    return room, (alice, a_tok), (bob, b_tok), (carol, c_tok), mallory


async def test_upgrade_to_v12_moves_everything(api):
    room, (alice, a_tok), (bob, _), (carol, c_tok), mallory = await ward(api)
    head = await aaudit_head()
    r = await api.call("POST", f"/rooms/{q(room)}/upgrade", {"new_version": "12"}, token=a_tok)
    assert r.status_code == 200, r.json()
    new = r.json()["replacement_room"]
    assert new != room

    st = await full_state(api, a_tok, new)
    create = st[("m.room.create", "")]["content"]
    # Spec v1.16: for v12 the predecessor's event_id may be omitted (the new room ID derives
    # from the create event, so it cannot name the tombstone).
    assert create == {"room_version": "12", "predecessor": {"room_id": room}}
    for etype, expected in [
        ("m.room.name", {"name": "Ward 7"}),
        ("m.room.topic", {"topic": "Night handover"}),
        ("m.room.avatar", {"url": "mxc://example.org/ward"}),
        ("m.room.encryption", ENCRYPTION),
        ("m.room.server_acl", {"allow": ["*"], "deny": []}),
        ("m.room.join_rules", {"join_rule": "public"}),
        ("m.room.history_visibility", {"history_visibility": "shared"}),
        ("m.room.guest_access", {"guest_access": "forbidden"}),
        ("m.room.canonical_alias",
         {"alias": f"#ward7:{hs()}", "alt_aliases": [f"#ward7-alt:{hs()}"]}),
    ]:
        assert st[(etype, "")]["content"] == expected, etype
    pl = st[("m.room.power_levels", "")]["content"]
    # v12: Alice, the creator, has infinite power and is not listed; Bob keeps 50.
    assert pl["users"] == {bob: 50}
    assert pl["invite"] == 50 and pl["events"]["m.room.tombstone"] == 100
    members = {k[1]: e["content"]["membership"] for k, e in st.items() if k[0] == "m.room.member"}
    assert members == {alice: "join", bob: "invite", carol: "invite", mallory: "ban"}

    # The old room: tombstone, restricted power levels, canonical alias cleared.
    old = await full_state(api, a_tok, room)
    assert old[("m.room.tombstone", "")]["content"] == {
        "body": "This room has been replaced", "replacement_room": new}
    old_pl = old[("m.room.power_levels", "")]["content"]
    assert old_pl["events_default"] == 50 and old_pl["invite"] == 50
    assert old[("m.room.canonical_alias", "")]["content"] == {}
    # Carol (power 0) can no longer talk in the old room.
    r = await api.call("PUT", f"/rooms/{q(room)}/send/m.room.message/t1",
                       {"msgtype": "m.text", "body": "still here?"}, token=c_tok)
    assert_error(r, 403, "M_FORBIDDEN")

    # Aliases and the directory listing moved.
    for name in ("#ward7", "#ward7-alt"):
        r = await api.call("GET", f"/directory/room/{q(name + ':' + hs())}")
        assert r.json()["room_id"] == new
    assert (await api.call("GET", f"/directory/list/room/{q(room)}")).json() == {
        "visibility": "private"}
    assert (await api.call("GET", f"/directory/list/room/{q(new)}")).json() == {
        "visibility": "public"}

    # Tags follow Alice now and Carol when she joins.
    r = await api.call("GET", f"/user/{q(alice)}/rooms/{q(new)}/tags", token=a_tok)
    assert r.json() == {"tags": {"m.favourite": {"order": 0.25}}}
    await join(api, c_tok, new)
    r = await api.call("GET", f"/user/{q(carol)}/rooms/{q(new)}/tags", token=c_tok)
    assert r.json() == {"tags": {"u.night": {}}}

    records = audited(await aaudit_since(head))
    upgraded = [rec for rec in records if rec[0] == AuditAction.ROOM_UPGRADED]
    assert upgraded == [(AuditAction.ROOM_UPGRADED, alice, room, {
        "replacement_room": new, "old_version": "10", "new_version": "12", "invited": 2,
        "bans_copied": 1, "aliases_moved": [f"#ward7-alt:{hs()}", f"#ward7:{hs()}"],
        "published": True, "old_room_restricted": True,
    })]
    assert AuditAction.ROOM_CREATED in [rec[0] for rec in records]


async def test_upgrade_to_v11_names_the_last_event_and_keeps_levels(api):
    alice, tok = await session(api)
    room = await new_room(api, tok, room_version="9", name="Old")
    r = await api.call("PUT", f"/rooms/{q(room)}/send/m.room.message/x",
                       {"msgtype": "m.text", "body": "last words"}, token=tok)
    last = r.json()["event_id"]
    r = await api.call("POST", f"/rooms/{q(room)}/upgrade", {"new_version": "11"}, token=tok)
    assert r.status_code == 200, r.json()
    new = r.json()["replacement_room"]
    st = await full_state(api, tok, new)
    assert st[("m.room.create", "")]["content"]["predecessor"] == {"room_id": room,
                                                                   "event_id": last}
    assert st[("m.room.create", "")]["content"]["room_version"] == "11"
    assert st[("m.room.power_levels", "")]["content"]["users"] == {alice: 100}
    assert st[("m.room.name", "")]["content"] == {"name": "Old"}
    # The room defaults of a room without these events are kept, not a createRoom preset's.
    assert st[("m.room.join_rules", "")]["content"] == {"join_rule": "invite"}


async def test_room_type_federation_flag_and_additional_creators(api):
    _, tok = await session(api)
    co, _ = await session(api)
    room = await new_room(api, tok, creation_content={"type": "m.space", "m.federate": False})
    r = await api.call("POST", f"/rooms/{q(room)}/upgrade",
                       {"new_version": "12", "additional_creators": [co]}, token=tok)
    assert r.status_code == 200, r.json()
    create = (await full_state(api, tok, r.json()["replacement_room"]))[("m.room.create", "")]
    assert create["content"]["type"] == "m.space"
    assert create["content"]["m.federate"] is False
    assert create["content"]["additional_creators"] == [co]


async def test_refusals_change_nothing(api):
    room, (_, a_tok), (_, b_tok), (_, c_tok), _ = await ward(api)
    _, outsider = await session(api)
    before = await snapshot()
    path = f"/rooms/{q(room)}/upgrade"
    cases = [
        ({}, a_tok, 400, "M_MISSING_PARAM"),
        ({"new_version": "99"}, a_tok, 400, "M_UNSUPPORTED_ROOM_VERSION"),
        ({"new_version": 12}, a_tok, 400, "M_UNSUPPORTED_ROOM_VERSION"),
        ({"new_version": "12", "additional_creators": "x"}, a_tok, 400, "M_BAD_JSON"),
        ({"new_version": "12", "additional_creators": ["nope"]}, a_tok, 400, "M_INVALID_PARAM"),
        ({"new_version": "12"}, b_tok, 403, "M_FORBIDDEN"),  # moderator: tombstone needs 100
        ({"new_version": "12"}, c_tok, 403, "M_FORBIDDEN"),
        ({"new_version": "12"}, outsider, 403, "M_FORBIDDEN"),
        ({"new_version": "12"}, None, 401, "M_MISSING_TOKEN"),
    ]
    for body, token, status, errcode in cases:
        assert_error(await api.call("POST", path, body, token=token), status, errcode)
    r = await api.call("POST", f"/rooms/{q('!unknown:' + hs())}/upgrade", {"new_version": "12"},
                       token=a_tok)
    assert_error(r, 403, "M_FORBIDDEN")
    assert_error(await api.call("POST", path, raw=b"{", token=a_tok), 400, "M_NOT_JSON")
    assert_error(await api.call("GET", path, token=a_tok), 405, "M_UNRECOGNIZED")
    assert await snapshot() == before
    assert_error(await state(api, a_tok, room, "m.room.tombstone"), 404, "M_NOT_FOUND")


async def test_policy_denial_rolls_back_the_whole_upgrade(api):
    room, (alice, a_tok), *_ = await ward(api)
    saved = list(hooks._registry[Hook.ROOM_CREATE])
    hooks.register(Hook.ROOM_CREATE, lambda ctx: Deny("test.no_new_rooms", "No new rooms today"))
    try:
        before = await snapshot()
        r = await api.call("POST", f"/rooms/{q(room)}/upgrade", {"new_version": "12"},
                           token=a_tok)
        assert_error(r, 403, "M_FORBIDDEN")
        assert r.json()["error"] == "No new rooms today"
        after = await snapshot()
    finally:
        hooks._registry[Hook.ROOM_CREATE][:] = saved
    # Only the denial's audit record remains: no room, event, alias move or tombstone.
    assert {**after, "audit": before["audit"]} == before
    assert after["audit"] == before["audit"] + 1
    records = audited(await aaudit_since(before["audit"]))
    assert records[0][0] == AuditAction.POLICY_DENIED and records[0][1] == alice
    assert (await api.call("GET", f"/directory/room/{q('#ward7:' + hs())}")).json()[
        "room_id"] == room
    assert await sync_to_async(Room.objects.filter(room_id=room, is_public=True).exists)()


async def test_a_user_with_tombstone_power_but_no_admin_may_upgrade(api):
    """Power levels that let moderators tombstone: the new room lifts the upgrader only while
    copying state, then restores the copied levels exactly."""
    alice, a_tok = await session(api)
    bob, b_tok = await session(api)
    room = await new_room(api, a_tok, preset="public_chat")
    await join(api, b_tok, room)
    pl = (await state(api, a_tok, room, "m.room.power_levels")).json()
    pl["users"][bob] = 50
    pl["events"]["m.room.tombstone"] = 50
    await put_state(api, a_tok, room, "m.room.power_levels", pl)
    head = await aaudit_head()
    r = await api.call("POST", f"/rooms/{q(room)}/upgrade", {"new_version": "10"}, token=b_tok)
    assert r.status_code == 200, r.json()
    new = r.json()["replacement_room"]
    new_pl = (await state(api, b_tok, new, "m.room.power_levels")).json()
    assert new_pl["users"] == {alice: 100, bob: 50}
    assert new_pl["events"]["m.room.tombstone"] == 50
    # Step 6 is "if possible": Bob may not change power levels (100), so the old room keeps
    # them; the tombstone is there all the same and the audit record says so.
    old_pl = (await state(api, a_tok, room, "m.room.power_levels")).json()
    assert old_pl["events_default"] == 0
    tomb = await state(api, a_tok, room, "m.room.tombstone")
    assert tomb.json()["replacement_room"] == new
    upgraded = [r for r in audited(await aaudit_since(head)) if r[0] == AuditAction.ROOM_UPGRADED]
    assert upgraded[0][3]["old_room_restricted"] is False
