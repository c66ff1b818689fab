"""TI-Messenger room rules over the client API (REQUIREMENTS.md "Rooms and end-to-end
encryption"): defaults, one invite per createRoom, room versions, join rules and history
visibility (at creation and later), threads, reactions and the 24 h redaction window."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from compliance.profiles import MEGOLM
from tests.accounts.conftest import amake_user
from tests.compliance.client import CIPHERTEXT, assert_error, put_state, send, session
from tests.compliance.conftest import (
    aassert_one_denial,
    aaudit_head,
    acount_events,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def state_of(api, tok: str, room: str) -> dict[str, dict]:
    events = (await api.call("GET", f"/rooms/{room}/state", token=tok)).json()
    return {e["type"]: e["content"] for e in events if e["state_key"] == ""}


async def create(api, tok: str, **body) -> str:
    r = await api.call("POST", "/createRoom", body, token=tok)
    assert r.status_code == 200, r.json()
    return r.json()["room_id"]


@pytest.mark.parametrize("profile", ["ti-m-basis", "ti-m-pro", "ti-m-epa"])
async def test_create_room_without_options_gets_the_tim_defaults(api, use_profile, profile):
    # A_25323-01, A_25481, A_26202/A_26203: invite-only, history `invited`, encrypted, private,
    # room version 10.
    use_profile(profile)
    _, tok = await session(api)
    room = await create(api, tok)
    state = await state_of(api, tok, room)
    assert state["m.room.join_rules"] == {"join_rule": "invite"}
    assert state["m.room.history_visibility"] == {"history_visibility": "invited"}
    assert state["m.room.encryption"] == {"algorithm": MEGOLM}
    assert state["m.room.create"]["room_version"] == "10"
    public = (await api.call("GET", "/publicRooms", token=tok))
    if public.status_code == 200:
        assert room not in {c["room_id"] for c in public.json().get("chunk", [])}


async def test_what_the_request_sets_itself_wins_over_the_defaults(api, use_profile):
    use_profile("ti-m-pro")
    _, tok = await session(api)
    room = await create(api, tok, room_version="9", initial_state=[
        {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}])
    state = await state_of(api, tok, room)
    assert state["m.room.history_visibility"] == {"history_visibility": "joined"}
    assert state["m.room.create"]["room_version"] == "9"


async def test_create_room_may_invite_one_user_only(api, use_profile):
    use_profile("ti-m-pro")
    alice, tok = await session(api)
    bob, carol = await amake_user(), await amake_user()
    before, seq = await acount_events(), await aaudit_head()
    r = await api.call("POST", "/createRoom", {"invite": [bob, carol]}, token=tok)
    assert_error(r, 403, "M_FORBIDDEN")
    assert await acount_events() == before
    await aassert_one_denial(seq, hook="room_create", rule="room_rules.create_invite_limit",
                             actor=alice, invite_count=2)
    room = await create(api, tok, invite=[bob])
    r = await api.call("POST", f"/rooms/{room}/invite", {"user_id": carol}, token=tok)
    assert r.status_code == 200, r.json()


async def test_tim_creates_only_versions_9_and_10(api, use_profile):
    use_profile("ti-m-pro")
    alice, tok = await session(api)
    for version in ("11", "12", "1"):
        before, seq = await acount_events(), await aaudit_head()
        r = await api.call("POST", "/createRoom", {"room_version": version}, token=tok)
        assert_error(r, 400, "M_UNSUPPORTED_ROOM_VERSION")
        assert await acount_events() == before
        await aassert_one_denial(seq, hook="room_create", rule="room_rules.room_version",
                                 actor=alice, errcode="M_UNSUPPORTED_ROOM_VERSION")


async def test_epa_refuses_public_and_open_rooms_at_creation(api, use_profile):
    use_profile("ti-m-epa")
    alice, tok = await session(api)
    for body, rule in [
        ({"preset": "public_chat"}, "room_rules.join_rule"),
        ({"visibility": "public"}, "room_rules.public_room"),
        ({"initial_state": [{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}]},
         "room_rules.join_rule"),
        ({"initial_state": [{"type": "m.room.join_rules",
                             "content": {"join_rule": "restricted", "allow": []}}]},
         "room_rules.join_rule"),
    ]:
        before, seq = await acount_events(), await aaudit_head()
        r = await api.call("POST", "/createRoom", body, token=tok)
        assert_error(r, 403, "M_FORBIDDEN")
        assert await acount_events() == before
        await aassert_one_denial(seq, hook="room_create", rule=rule, actor=alice)


async def test_pro_public_room_stays_local(api, use_profile):
    # A_26515-01: a public createRoom forces m.federate=false.
    use_profile("ti-m-pro")
    _, tok = await session(api)
    room = await create(api, tok, preset="public_chat")
    state = await state_of(api, tok, room)
    assert state["m.room.create"]["m.federate"] is False
    assert state["m.room.join_rules"] == {"join_rule": "public"}


@pytest.mark.parametrize(("profile", "refused"), [
    ("ti-m-pro", [("public", "room_rules.join_rule_change")]),
    ("ti-m-epa", [("public", "room_rules.join_rule_change"), ("knock", "room_rules.join_rule"),
                  ("restricted", "room_rules.join_rule")]),
])
async def test_join_rule_cannot_be_opened_later(api, use_profile, profile, refused):
    use_profile(profile)
    alice, tok = await session(api)
    room = await create(api, tok)
    for join_rule, rule in refused:
        before, seq = await acount_events(room), await aaudit_head()
        r = await put_state(api, tok, room, "m.room.join_rules", {"join_rule": join_rule})
        assert_error(r, 403, "M_FORBIDDEN")
        assert await acount_events(room) == before
        await aassert_one_denial(seq, hook="client_send", rule=rule, actor=alice,
                                 room_id=room, event_type="m.room.join_rules")
    assert (await state_of(api, tok, room))["m.room.join_rules"] == {"join_rule": "invite"}


async def test_pro_allows_knock_later(api, use_profile):
    use_profile("ti-m-pro")
    _, tok = await session(api)
    room = await create(api, tok)
    r = await put_state(api, tok, room, "m.room.join_rules", {"join_rule": "knock"})
    assert r.status_code == 200, r.json()


async def test_world_readable_is_refused_at_creation_and_later(api, use_profile):
    use_profile("ti-m-pro")
    alice, tok = await session(api)
    before, seq = await acount_events(), await aaudit_head()
    r = await api.call("POST", "/createRoom", {"initial_state": [
        {"type": "m.room.history_visibility",
         "content": {"history_visibility": "world_readable"}}]}, token=tok)
    assert_error(r, 403, "M_FORBIDDEN")
    assert await acount_events() == before
    await aassert_one_denial(seq, hook="room_create", rule="room_rules.world_readable",
                             actor=alice)
    room = await create(api, tok)
    before, seq = await acount_events(room), await aaudit_head()
    r = await put_state(api, tok, room, "m.room.history_visibility",
                        {"history_visibility": "world_readable"})
    assert_error(r, 403, "M_FORBIDDEN")
    assert await acount_events(room) == before
    await aassert_one_denial(seq, hook="client_send", rule="room_rules.world_readable",
                             actor=alice, event_type="m.room.history_visibility")
    r = await put_state(api, tok, room, "m.room.history_visibility",
                        {"history_visibility": "shared"})
    assert r.status_code == 200, r.json()


async def test_threads_are_refused_even_encrypted(api, use_profile):
    use_profile("ti-m-pro")
    alice, tok = await session(api)
    room = await create(api, tok)
    root = (await send(api, tok, room, "m.room.encrypted", CIPHERTEXT, "a")).json()["event_id"]
    before, seq = await acount_events(room), await aaudit_head()
    threaded = {**CIPHERTEXT, "m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    r = await send(api, tok, room, "m.room.encrypted", threaded, "b")
    assert_error(r, 403, "M_FORBIDDEN")
    assert await acount_events(room) == before
    await aassert_one_denial(seq, hook="client_send", rule="message_rules.thread", actor=alice,
                             event_type="m.room.encrypted")
    reply = {**CIPHERTEXT, "m.relates_to": {"m.in_reply_to": {"event_id": root}}}
    assert (await send(api, tok, room, "m.room.encrypted", reply, "c")).status_code == 200


async def test_reactions_must_be_a_single_emoji(api, use_profile):
    use_profile("ti-m-pro")
    alice, tok = await session(api)
    room = await create(api, tok)
    target = (await send(api, tok, room, "m.room.encrypted", CIPHERTEXT, "a")).json()["event_id"]
    for i, key in enumerate(["👍", "👍🏽", "👨‍👩‍👧", "🇩🇪", "❤️", "1️⃣"]):
        relation = {"rel_type": "m.annotation", "event_id": target, "key": key}
        r = await send(api, tok, room, "m.reaction", {"m.relates_to": relation}, f"ok{i}")
        assert r.status_code == 200, (key, r.json())
    for i, key in enumerate(["👍👍", "confidential", "+1", "", None, 7]):
        relation = {"rel_type": "m.annotation", "event_id": target}
        if key is not None:
            relation["key"] = key
        before, seq = await acount_events(room), await aaudit_head()
        r = await send(api, tok, room, "m.reaction", {"m.relates_to": relation}, f"no{i}")
        assert_error(r, 403, "M_FORBIDDEN")
        assert await acount_events(room) == before
        d = await aassert_one_denial(seq, hook="client_send", rule="message_rules.reaction_key",
                                     actor=alice, event_type="m.reaction")
        assert "confidential" not in json.dumps(d)


@sync_to_async
def age_event(event_id: str, hours: float) -> None:
    """Make a stored event look `hours` old: its origin_server_ts column and its PDU JSON."""
    old = int(time.time() * 1000 - hours * 3600 * 1000)
    with connection.cursor() as cur:
        cur.execute("SELECT origin_server_ts FROM events WHERE event_id = %s", [event_id])
        [ts] = cur.fetchone()
        cur.execute(
            "UPDATE events SET origin_server_ts = %s, json = REPLACE(json, %s, %s) "
            "WHERE event_id = %s",
            [old, f'"origin_server_ts":{ts}', f'"origin_server_ts":{old}', event_id],
        )


async def test_events_older_than_24_hours_cannot_be_redacted(api, use_profile):
    # A_28358: redact a 25 h old event -> 403; a 23 h old one -> 200.
    use_profile("ti-m-pro")
    alice, tok = await session(api)
    room = await create(api, tok)
    old = (await send(api, tok, room, "m.room.encrypted", CIPHERTEXT, "a")).json()["event_id"]
    recent = (await send(api, tok, room, "m.room.encrypted", CIPHERTEXT, "b")).json()["event_id"]
    await age_event(old, 25)
    await age_event(recent, 23)
    before, seq = await acount_events(room), await aaudit_head()
    r = await api.call("PUT", f"/rooms/{room}/redact/{quote(old)}/r1", {}, token=tok)
    assert_error(r, 403, "M_FORBIDDEN")
    assert await acount_events(room) == before
    await aassert_one_denial(seq, hook="client_send", rule="message_rules.redaction_window",
                             actor=alice, event_type="m.room.redaction", redacts=old)
    ev = (await api.call("GET", f"/rooms/{room}/event/{quote(old)}", token=tok)).json()
    assert ev["content"]["ciphertext"] == "AwgAEnAC"  # not redacted
    r = await api.call("PUT", f"/rooms/{room}/redact/{quote(recent)}/r2", {}, token=tok)
    assert r.status_code == 200, r.json()


async def test_the_window_can_be_switched_off_by_override(api, use_profile):
    use_profile("ti-m-pro", redaction_window_hours=0)
    _, tok = await session(api)
    room = await create(api, tok)
    old = (await send(api, tok, room, "m.room.encrypted", CIPHERTEXT, "a")).json()["event_id"]
    await age_event(old, 100)
    r = await api.call("PUT", f"/rooms/{room}/redact/{quote(old)}/r1", {}, token=tok)
    assert r.status_code == 200, r.json()
