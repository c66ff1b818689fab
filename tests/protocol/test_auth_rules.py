"""auth_rules.py: create event, room id, auth events, m.federate, the rules for non-member events,
auth events selection; and the old-version rules (aliases v1-v5, redaction v1-v2).

Rule numbers are cited as in rooms/v12.md, then v6-v11 / v1-v5 where they differ. Membership
rules are in test_auth_membership.py, power levels changes in test_auth_power_levels.py.
"""

from __future__ import annotations

import dataclasses

import pytest

from homeserver.protocol.auth_rules import (
    AuthError,
    auth_types_for_event,
    check_auth_events,
    check_auth_rules,
)
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from tests.protocol.auth_room import ALICE, BOB, CAROL, MOD, Room
from tests.protocol.factory import make_event

CURRENT = ["10", "11", "12"]
CREATE = ("m.room.create", "")
PL = ("m.room.power_levels", "")


@pytest.fixture(params=CURRENT)
def version(request):
    return request.param


def create_event(version, sender=ALICE, content=None, **kw):
    rv = KNOWN_ROOM_VERSIONS[version]
    content = dict(content or {})
    if not rv.implicit_room_creator:
        content.setdefault("creator", sender)
    kw.setdefault("room_id", None if rv.room_id_from_create_event else "!room:example.org")
    return make_event(
        "$CREATE", "m.room.create", sender, content, state_key="", **kw, room_version=version
    )


def cited(room, event):
    """The events `event` cites in its auth_events, resolved from the room's state."""
    by_id = {e.event_id: e for e in room.state.values()}
    return [by_id[i] for i in event.auth_event_ids]


def allowed(event, auth_events=None):
    try:
        check_auth_rules(event, auth_events or {})
    except AuthError:
        return False
    return True


def test_auth_error_carries_reason():
    err = AuthError("because")
    assert err.reason == "because" and str(err) == "because"


# ---- rule 1: m.room.create ---------------------------------------------------------------------


def test_create_minimal_is_allowed(version):
    # Spec v12 1.5 / v11 1.4 / v10 1.5: a create event passing 1.1-1.4 is allowed, whatever the
    # auth events (it has none).
    check_auth_rules(create_event(version), {})


def test_create_with_prev_events_is_rejected(version):
    # Spec 1.1: the create event is the first event; it cannot have prev_events.
    assert not allowed(create_event(version, prev_events=["$x"]))


@pytest.mark.parametrize("version", ["10", "11"])
def test_create_room_id_server_must_be_sender_server(version):
    # Spec v1-v11 1.2: the room id's server must be the sender's server.
    assert not allowed(create_event(version, room_id="!room:other.org"))
    assert allowed(create_event(version, room_id="!room:example.org"))


def test_v12_create_with_room_id_is_rejected():
    # Spec v12 1.2: the create event has no room_id; the room id is derived from its event id.
    assert not allowed(create_event("12", room_id="!CREATE"))
    assert allowed(create_event("12"))


def test_create_room_version_must_be_known(version):
    # Spec 1.3: content.room_version, if present, must be a recognised version.
    assert allowed(create_event(version, content={"room_version": version}))
    assert not allowed(create_event(version, content={"room_version": "999"}))
    assert not allowed(create_event(version, content={"room_version": 10}))


def test_v10_create_needs_creator():
    # Spec v10 1.4: content must have `creator`.
    event = create_event("10")
    del event.pdu["content"]["creator"]
    assert not allowed(event)


@pytest.mark.parametrize("version", ["11", "12"])
def test_v11_create_needs_no_creator(version):
    # Spec v11 1 (changed): the `creator` rule is gone; the sender is the creator.
    assert "creator" not in create_event(version).content
    assert allowed(create_event(version))


@pytest.mark.parametrize(
    ("creators", "ok"),
    [
        ([], True),
        ([BOB, CAROL], True),
        (["@:example.org"], True),  # historical user IDs (empty localpart) must be accepted
        (BOB, False),  # not an array
        ([BOB, 5], False),  # not strings
        (["bob"], False),  # not a user ID
        (["@bob"], False),  # no server name
        (["@bob:bad_host"], False),  # invalid server name
    ],
)
def test_v12_additional_creators_must_be_user_ids(creators, ok):
    # Spec v12 1.4: additional_creators, if present, is an array of strings that pass the user
    # ID validation applied to `sender`.
    assert allowed(create_event("12", content={"additional_creators": creators})) is ok


@pytest.mark.parametrize("version", ["10", "11"])
def test_additional_creators_is_meaningless_before_v12(version):
    # Spec v10/v11 rule 1 has no additional_creators rule: any value passes.
    assert allowed(create_event(version, content={"additional_creators": "junk"}))


# ---- rule 2 (v12): room id is the create event's id; v1-v11 2.4: create event present -------


def test_event_without_create_in_auth_events_is_rejected(version):
    # Spec v1-v11 2.4 (no create among the auth events) / v12 2 (the room id is not the id of
    # an accepted create event: there is none).
    room = Room.standard(version)
    message = room.event("m.room.message", ALICE, {"body": "hi"})
    auth = room.auth_map(message)
    del auth[CREATE]
    with pytest.raises(AuthError):
        check_auth_rules(message, auth)


def test_v12_room_id_must_be_the_create_event_id():
    # Spec v12 2: the event's room_id must be the create event's id with `!` for `$`.
    room = Room.standard("12")
    message = room.event("m.room.message", ALICE, {"body": "hi"})
    assert room.allows(message)
    other_create = dataclasses.replace(room.create, event_id="$OTHER")
    assert not allowed(message, {**room.auth_map(message), CREATE: other_create})
    stray = room.event("m.room.message", ALICE, {}, room_id="!SOMEWHERE")
    assert not room.allows(stray)


def test_v12_room_id_of_rejected_create_event_is_rejected():
    # Spec v12 2: the create event must be accepted (not rejected).
    room = Room.standard("12")
    message = room.event("m.room.message", ALICE, {"body": "hi"})
    rejected = dataclasses.replace(room.create, rejected_reason="bad")
    assert not allowed(message, {**room.auth_map(message), CREATE: rejected})


# ---- rule 3 (v12) / 2 (v1-v11): the event's auth_events ---------------------------------------


def test_auth_events_as_received_happy_path(version):
    # Spec v12 3 / v11 2: an event citing exactly its selected auth events passes them.
    room = Room.standard(version)
    room.check_as_received(room.event("m.room.message", ALICE, {"body": "hi"}))
    room.check_as_received(room.member_event(BOB, "invite", sender=ALICE))


def test_auth_events_duplicate_pair_is_rejected(version):
    # Spec v12 3.1 / v11 2.1: two entries for the same (type, state_key).
    room = Room.standard(version)
    old_pl = room.state[PL]
    room.power_levels({"users": room.state[PL].content["users"]})
    message = room.event("m.room.message", ALICE, {})
    with pytest.raises(AuthError, match="two entries"):
        check_auth_events(message, [*cited(room, message), old_pl], create_event=room.create)


def test_auth_events_same_event_twice_is_rejected_by_check_auth_rules(version):
    # Spec v12 3.1 / v11 2.1: citing one event twice is a duplicate pair; the mapping-based
    # check sees it from the event's own auth_events list.
    room = Room.standard(version)
    message = room.event("m.room.message", ALICE, {})
    pl_id = room.state[PL].event_id
    message.pdu["auth_events"].append(pl_id)
    assert not room.allows(message)


def test_auth_events_unexpected_entry_is_rejected(version):
    # Spec v12 3.2 / v11 2.2: only pairs of the auth events selection may be cited; the join
    # rules are not selected for a message.
    room = Room.standard(version)
    message = room.event("m.room.message", ALICE, {})
    join_rules = room.state[("m.room.join_rules", "")]
    with pytest.raises(AuthError, match="unexpected"):
        check_auth_events(message, [*cited(room, message), join_rules], create_event=room.create)


def test_v12_citing_the_create_event_is_rejected():
    # Spec v12 3.2: "In this room version, m.room.create MUST NOT be selected."
    room = Room.standard("12")
    message = room.event("m.room.message", ALICE, {})
    message.pdu["auth_events"].append(room.create.event_id)
    assert not room.allows(message)
    with pytest.raises(AuthError, match="unexpected"):
        check_auth_events(message, [room.create], create_event=room.create)


@pytest.mark.parametrize("version", ["10", "11"])
def test_v11_create_event_must_be_cited(version):
    # Spec v11 2.4: an event whose own auth_events lack the create event is rejected.
    room = Room.standard(version)
    message = room.event("m.room.message", ALICE, {})
    without_create = [e for e in cited(room, message) if e.type != "m.room.create"]
    with pytest.raises(AuthError, match=r"m\.room\.create"):
        check_auth_events(message, without_create)


def test_auth_events_rejected_entry_is_rejected(version):
    # Spec v12 3.3 / v11 2.3: a cited auth event that was itself rejected.
    room = Room.standard(version)
    room.state[PL] = dataclasses.replace(room.state[PL], rejected_reason="auth")
    message = room.event("m.room.message", ALICE, {})
    assert not room.allows(message)
    with pytest.raises(AuthError, match="rejected"):
        room.check_as_received(message)


def test_rejected_state_entry_not_cited_is_used(version):
    # Spec v12 3.3 covers the event's own auth_events only. State resolution may hand in a
    # state map whose power levels were rejected against their own state and re-admitted by
    # the iterative auth checks ("Rejected events"); an event not citing it is checked as usual.
    room = Room.standard(version)
    message = room.event("m.room.message", ALICE, {})
    state_pl = dataclasses.replace(room.state[PL], event_id="$other-pl", rejected_reason="soft")
    assert allowed(message, {**room.auth_map(message), PL: state_pl})


def test_auth_event_from_another_room_is_rejected(version):
    # Spec v12 3.5 / v11 2.5: every auth event must be in the event's room.
    room = Room.standard(version)
    message = room.event("m.room.message", ALICE, {})
    foreign = room.state[PL]
    foreign = dataclasses.replace(foreign, pdu={**foreign.pdu, "room_id": "!elsewhere:x.org"})
    assert not allowed(message, {**room.auth_map(message), PL: foreign})
    swapped = [foreign if e.type == PL[0] else e for e in cited(room, message)]
    with pytest.raises(AuthError, match="another room"):
        check_auth_events(message, swapped, create_event=room.create)


@pytest.mark.parametrize("version", ["10", "11"])
def test_create_event_of_another_room_is_rejected(version):
    # Spec v11 2.5 applied to the create event.
    room = Room.standard(version)
    message = room.event("m.room.message", ALICE, {})
    foreign = create_event(version, room_id="!elsewhere:example.org")
    assert not allowed(message, {**room.auth_map(message), CREATE: foreign})


def test_extra_entries_of_the_state_map_are_ignored(version):
    # check_auth_rules takes the whole state before the event as well: entries the rules do
    # not read (here a bogus m.room.name from another room) cannot affect the outcome.
    room = Room.standard(version)
    message = room.event("m.room.message", ALICE, {})
    junk = make_event(
        "$junk",
        "m.room.name",
        BOB,
        {},
        state_key="",
        room_id="!x:y",
        room_version=version,
        rejected_reason="nope",
    )
    assert allowed(message, {**room.state, ("m.room.name", ""): junk})


def test_create_event_has_no_auth_events(version):
    # Server-server "Auth events selection": the create event's auth_events are empty.
    event = create_event(version)
    assert check_auth_events(event, []) == {}
    with pytest.raises(AuthError, match="unexpected"):
        check_auth_events(event, [create_event(version)])


# ---- rule 4 (v12) / 3 (v1-v11): m.federate -----------------------------------------------------


def test_unfederated_room_rejects_senders_of_other_servers(version):
    # Spec v12 4 / v11 3: m.federate false admits only the create event sender's server.
    room = Room(version, create_content={"m.federate": False})
    room.member(ALICE, "join")
    room.join_rule("public")
    assert not room.allows(room.member_event(CAROL, "join"))  # other.org
    assert room.allows(room.member_event(BOB, "join"))  # example.org


def test_federated_room_admits_other_servers(version):
    # Spec v12 4: only `false` restricts; absent or true does not.
    for federate in ({}, {"m.federate": True}):
        room = Room(version, create_content=federate)
        room.member(ALICE, "join")
        room.join_rule("public")
        assert room.allows(room.member_event(CAROL, "join"))


# ---- rules 6-9 and 11 (v12) / 5-8 and 10 (v6-v11) --------------------------------------------


def test_sender_must_be_joined(version):
    # Spec v12 6 / v11 5: only joined users send non-membership events; invited is not enough.
    room = Room.standard(version)
    assert room.allows(room.event("m.room.message", ALICE, {"body": "hi"}))
    assert not room.allows(room.event("m.room.message", BOB, {"body": "hi"}))
    room.member(BOB, "invite", sender=ALICE)
    assert "not joined" in room.reason(room.event("m.room.message", BOB, {"body": "hi"}))


def test_third_party_invite_event_needs_invite_level(version):
    # Spec v12 7 / v11 6: m.room.third_party_invite is allowed iff sender level >= invite.
    room = Room.standard(version, invite=50)
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "join")
    tpi = {"display_name": "x", "public_key": "abc", "key_validity_url": "https://x"}
    assert room.allows(room.event("m.room.third_party_invite", MOD, tpi, state_key="t"))
    assert not room.allows(room.event("m.room.third_party_invite", BOB, tpi, state_key="t"))


def test_third_party_invite_event_ignores_required_level(version):
    # Spec v12 7 decides before rule 8: an `events` level for the type does not apply.
    room = Room.standard(version, events={"m.room.third_party_invite": 100})
    tpi = {"display_name": "x", "public_key": "abc", "key_validity_url": "https://x"}
    assert room.allows(room.event("m.room.third_party_invite", MOD, tpi, state_key="t"))


def test_required_power_level_for_state_and_messages(version):
    # Spec v12 8 / v11 7: the type's level (events, else state_default / events_default)
    # must not exceed the sender's.
    room = Room.standard(version, events={"m.room.topic": 10, "m.custom": 60})
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "join")
    # Bob has 0: messages (events_default 0) yes, state (state_default 50) no.
    assert room.allows(room.event("m.room.message", BOB, {}))
    assert not room.allows(room.event("m.room.name", BOB, {"name": "x"}, state_key=""))
    # MOD has 50: state_default 50 is enough, `events` overrides in both directions.
    assert room.allows(room.event("m.room.name", MOD, {"name": "x"}, state_key=""))
    assert not room.allows(room.event("m.custom", MOD, {}))
    assert room.allows(room.event("m.custom", ALICE, {}))
    room.power_levels({**room.state[PL].content, "events_default": 10})
    assert not room.allows(room.event("m.room.message", BOB, {}))


def test_state_key_of_another_user_is_rejected(version):
    # Spec v12 9 / v11 8: a state_key starting with @ belongs to that user only.
    room = Room.standard(version, state_default=0)
    assert room.allows(room.event("m.custom.state", MOD, {}, state_key=MOD))
    assert not room.allows(room.event("m.custom.state", MOD, {}, state_key=BOB))
    # Even the creator cannot set it.
    assert not room.allows(room.event("m.custom.state", ALICE, {}, state_key=BOB))
    # A state key merely containing @ is not a user's.
    assert room.allows(room.event("m.custom.state", MOD, {}, state_key="x@y"))


def test_redaction_only_needs_its_event_level_from_v3(version):
    # Spec v3+ note: m.room.redaction is authorised like any other event; the redact level is
    # not considered here (it is checked when the redaction is applied).
    room = Room.standard(version, redact=100)
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "join")
    assert room.allows(room.event("m.room.redaction", BOB, {"redacts": "$x:other.org"}))
    room.power_levels({**room.state[PL].content, "events": {"m.room.redaction": 50}})
    assert not room.allows(room.event("m.room.redaction", BOB, {"redacts": "$x"}))


def test_otherwise_allow(version):
    # Spec v12 11 / v11 10: an ordinary event passing rules 1-9 is allowed.
    room = Room.standard(version)
    assert room.allows(room.event("m.room.topic", ALICE, {"topic": "x"}, state_key=""))


# ---- old versions: m.room.aliases (v1-v5) and m.room.redaction (v1-v2) -----------------------


@pytest.mark.parametrize("version", ["1", "5"])
def test_aliases_rule_before_v6(version):
    # Spec v1-v5 rule 4: m.room.aliases needs a state_key equal to the sender's server and is
    # then allowed outright -- no membership (rule 6) or power level (rule 8) check.
    room = Room.standard(version)
    outsider = "@eve:example.org"  # never joined, power level 0
    assert room.allows(room.event("m.room.aliases", outsider, {}, state_key="example.org"))
    # 4.2: the state key must be the sender's own server.
    assert not room.allows(room.event("m.room.aliases", outsider, {}, state_key="other.org"))
    # 4.1: it must be a state event.
    assert not room.allows(room.event("m.room.aliases", ALICE, {"aliases": []}))


def test_aliases_have_no_special_rule_from_v6():
    # Spec v6: "Rule 4 ... m.room.aliases, is removed": aliases are ordinary state events.
    room = Room.standard("6")
    outsider = "@eve:example.org"
    assert not room.allows(room.event("m.room.aliases", outsider, {}, state_key="example.org"))
    assert room.allows(room.event("m.room.aliases", ALICE, {}, state_key="anything"))


@pytest.mark.parametrize("version", ["1", "2"])
def test_redaction_rule_v1_v2(version):
    # Spec v1-v2 rule 11: a redaction is allowed with the redact level, or when the redacted
    # event's id has the redaction event's server; otherwise rejected.
    room = Room.standard(version)
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "join")
    same = room.event(
        "m.room.redaction", BOB, {}, event_id="$r1:example.org", redacts="$target:example.org"
    )
    other = room.event(
        "m.room.redaction", BOB, {}, event_id="$r2:example.org", redacts="$target:other.org"
    )
    missing = room.event("m.room.redaction", BOB, {}, event_id="$r3:example.org")
    assert room.allows(same)
    assert not room.allows(other)
    assert not room.allows(missing)
    # 11.1: the redact level (50) allows redacting any event.
    by_mod = room.event(
        "m.room.redaction", MOD, {}, event_id="$r4:example.org", redacts="$target:other.org"
    )
    assert room.allows(by_mod)


def test_redaction_rule_removed_in_v3():
    # Spec v3: the redact level is no longer considered by the auth rules.
    room = Room.standard("3")
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "join")
    assert room.allows(room.event("m.room.redaction", BOB, {}, redacts="$target:other.org"))


@pytest.mark.parametrize("version", ["1", "6"])
def test_old_create_needs_creator(version):
    # Spec v1 / v6 rule 1.4: `content.creator` is required before v11.
    event = create_event(version)
    assert allowed(event)
    del event.pdu["content"]["creator"]
    assert not allowed(event)


# ---- auth events selection ---------------------------------------------------------------------


def test_auth_types_for_message(version):
    # Server-server "Auth events selection": create (not in v12), power levels, sender member.
    rv = KNOWN_ROOM_VERSIONS[version]
    types = auth_types_for_event(rv, "m.room.message", ALICE, None, {})
    expected = [PL, ("m.room.member", ALICE)]
    if not rv.room_id_from_create_event:
        expected.insert(0, CREATE)
    assert types == expected


def test_auth_types_for_create_event_are_empty(version):
    assert auth_types_for_event(KNOWN_ROOM_VERSIONS[version], "m.room.create", ALICE, "", {}) == []


def test_auth_types_for_membership(version):
    rv = KNOWN_ROOM_VERSIONS[version]
    base = [] if rv.room_id_from_create_event else [CREATE]
    base += [PL, ("m.room.member", ALICE)]
    jr = ("m.room.join_rules", "")

    def types(membership, sender=ALICE, target=BOB, **content):
        return auth_types_for_event(
            rv, "m.room.member", sender, target, {"membership": membership, **content}
        )

    # target member; join rules for join / invite / knock only.
    assert types("invite") == [*base, ("m.room.member", BOB), jr]
    assert types("knock") == [*base, ("m.room.member", BOB), jr]
    assert types("ban") == [*base, ("m.room.member", BOB)]
    assert types("leave") == [*base, ("m.room.member", BOB)]
    # self-targeted: the sender's member event is listed once.
    assert types("join", BOB, BOB) == [*(base[:-1]), ("m.room.member", BOB), jr]
    # third party invite: the m.room.third_party_invite of the signed token.
    tpi = {"signed": {"token": "tok", "mxid": BOB, "signatures": {}}}
    assert types("invite", third_party_invite=tpi)[-1] == ("m.room.third_party_invite", "tok")
    assert types("invite", third_party_invite={"signed": "junk"}) == types("invite")
    # restricted join (v8+): the authorising user's member event.
    joined = types("join", BOB, BOB, join_authorised_via_users_server=MOD)
    assert joined[-1] == ("m.room.member", MOD)


def test_auth_types_authorising_user_only_from_v8():
    # Server-server "Auth events selection": only if the room version supports restricted rooms.
    content = {"membership": "join", "join_authorised_via_users_server": MOD}
    v7 = auth_types_for_event(KNOWN_ROOM_VERSIONS["7"], "m.room.member", BOB, BOB, content)
    v8 = auth_types_for_event(KNOWN_ROOM_VERSIONS["8"], "m.room.member", BOB, BOB, content)
    assert ("m.room.member", MOD) not in v7
    assert ("m.room.member", MOD) in v8
