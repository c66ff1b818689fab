"""auth_membership.py and auth_third_party_invite.py: the m.room.member rules.

Rule numbers are those of rooms/v12.md rule 5 (v6-v11: rule 4; v1-v5: rule 5, without the
knock and restricted sub-rules). Complete for v10, v11, v12; plus the knock (v7), restricted
(v8) and knock_restricted (v10) boundaries.
"""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.unpadded_base64 import encode_base64, encode_base64_urlsafe
from tests.protocol.auth_room import ALICE, BOB, CAROL, MOD, ZED, Room

CURRENT = ["10", "11", "12"]


@pytest.fixture(params=CURRENT)
def version(request):
    return request.param


def joined(room: Room, *users: str) -> Room:
    for user in users:
        room.member(user, "invite", sender=ALICE)
        room.member(user, "join")
    return room


def signed_by(user: str) -> dict:
    """Signatures of the user's server, as receipt step 2 would have verified them."""
    return {"signatures": {user.partition(":")[2]: {"ed25519:1": "sig"}}}


# ---- 5.1 and 5.8 --------------------------------------------------------------------------------


def test_member_event_needs_state_key_and_membership(version):
    # Spec v12 5.1: no state_key or no content.membership -> reject.
    room = Room.standard(version, join_rule="public")
    assert "state_key or membership" in room.reason(
        room.event("m.room.member", BOB, {}, state_key=BOB)
    )
    no_key = room.event("m.room.member", BOB, {"membership": "join"})
    assert "state_key or membership" in room.reason(no_key)


def test_unknown_membership_is_rejected(version):
    # Spec v12 5.8: any other membership value is unknown.
    room = Room.standard(version, join_rule="public")
    assert "unknown membership" in room.reason(room.member_event(BOB, "dance"))
    assert "unknown membership" in room.reason(room.member_event(BOB, ["join"]))


# ---- 5.2 join_authorised_via_users_server signature -----------------------------------------


def test_authorising_user_server_must_have_signed(version):
    # Spec v12 5.2 (v8+): with join_authorised_via_users_server, the event must be signed by
    # that user's server (signatures are verified on receipt; the rule needs one present).
    room = Room.standard(version, join_rule="restricted")
    unsigned = room.member_event(CAROL, "join", join_authorised_via_users_server=MOD)
    assert "did not sign" in room.reason(unsigned)
    signed = room.member_event(CAROL, "join", join_authorised_via_users_server=MOD)
    signed.pdu.update(signed_by(MOD))
    assert room.allows(signed)


def test_authorising_user_rule_applies_to_any_membership(version):
    # Spec v12 5.2 precedes the membership branches: a leave carrying the key unsigned by its
    # server is rejected too (even though 5.5.1 would allow the leave itself).
    room = joined(Room.standard(version), BOB)
    leave = room.member_event(BOB, "leave", join_authorised_via_users_server=CAROL)
    assert "did not sign" in room.reason(leave)
    leave.pdu.update(signed_by(CAROL))
    assert room.allows(leave)


def test_authorising_user_that_is_not_a_string_is_rejected(version):
    room = Room.standard(version, join_rule="public")
    event = room.member_event(BOB, "join", join_authorised_via_users_server=5)
    assert "did not sign" in room.reason(event)


def test_authorising_user_key_is_meaningless_before_v8():
    # Spec v7 rule 4 has no 4.2: the key is ordinary content.
    room = Room.standard("7", join_rule="public")
    assert room.allows(room.member_event(BOB, "join", join_authorised_via_users_server=MOD))


# ---- 5.3 join -----------------------------------------------------------------------------------


def test_creator_first_join_after_create(version):
    # Spec v12 5.3.1 (v11 4.3.1, v10 "the creator"): when the only prev event is the create
    # event and the state_key is the creator, allow -- there are no power levels or join rules.
    room = Room(version)
    assert room.allows(room.member_event(ALICE, "join"))


def test_first_join_of_someone_else_is_not_special(version):
    # Spec v12 5.3.1 covers only the creator; Bob then fails 5.3.4-5.3.7 (no join rules: a room
    # without m.room.join_rules admits only the invited).
    room = Room(version)
    assert not room.allows(room.member_event(BOB, "join"))


def test_creator_join_needs_create_as_only_prev_event(version):
    # Spec v12 5.3.1: "the only previous event" -- with two prev events the rule does not apply.
    room = Room(version)
    event = room.member_event(ALICE, "join")
    event.pdu["prev_events"] = ["$CREATE", "$other"]
    assert not room.allows(event)


def test_v10_creator_is_the_content_creator():
    # Spec v10 4.3.1: "the creator" is content.creator of the create event, not its sender.
    room = Room("10", creator=ALICE, create_content={"creator": ZED})
    assert room.allows(room.member_event(ZED, "join"))
    assert not room.allows(room.member_event(ALICE, "join"))


def test_v11_creator_is_the_create_sender():
    # Spec v11 4.3.1 (changed): the sender of the m.room.create event.
    room = Room("11", creator=ALICE, create_content={"creator": ZED})
    assert room.allows(room.member_event(ALICE, "join"))
    assert not room.allows(room.member_event(ZED, "join"))


def test_v12_additional_creators_have_no_first_join():
    # Spec v12 5.3.1 names "the sender of the m.room.create", not additional creators.
    room = Room("12", create_content={"additional_creators": [BOB]})
    assert not room.allows(room.member_event(BOB, "join"))


def test_cannot_join_for_someone_else(version):
    # Spec v12 5.3.2: sender must equal state_key.
    room = Room.standard(version, join_rule="public")
    assert "another user" in room.reason(room.member_event(BOB, "join", sender=MOD))


def test_banned_user_cannot_join(version):
    # Spec v12 5.3.3: even in a public room.
    room = Room.standard(version, join_rule="public")
    room.member(BOB, "ban", sender=ALICE)
    assert "banned" in room.reason(room.member_event(BOB, "join"))


@pytest.mark.parametrize("rule", ["invite", "knock"])
def test_invite_and_knock_rooms_admit_invited_and_joined(version, rule):
    # Spec v12 5.3.4: join rule invite or knock: allow iff membership is invite or join.
    room = Room.standard(version, join_rule=rule)
    assert not room.allows(room.member_event(BOB, "join"))
    room.member(BOB, "invite", sender=ALICE)
    assert room.allows(room.add(room.member_event(BOB, "join")))
    # Already joined: a new join (e.g. a profile change) is allowed.
    assert room.allows(room.member_event(BOB, "join", displayname="Bob"))
    # A knock alone does not admit.
    if rule == "knock":
        room.member(CAROL, "knock")
    assert not room.allows(room.member_event(CAROL, "join"))


def test_no_join_rules_event_means_invite(version):
    # The spec gives no default join rule; without m.room.join_rules only invited users join.
    room = Room(version)
    room.member(ALICE, "join")
    assert not room.allows(room.member_event(BOB, "join"))
    room.member(BOB, "invite", sender=ALICE)
    assert room.allows(room.member_event(BOB, "join"))


@pytest.mark.parametrize("rule", ["restricted", "knock_restricted"])
def test_restricted_join(version, rule):
    # Spec v12 5.3.5 (v10+: restricted or knock_restricted).
    room = joined(Room.standard(version, join_rule=rule, invite=50), BOB)

    def join(user, via):
        event = room.member_event(user, "join", join_authorised_via_users_server=via)
        event.pdu.update(signed_by(via))
        return event

    # 5.3.5.2: authorised by a joined user with the invite level (MOD: 50) -> 5.3.5.3 allow.
    assert room.allows(join(CAROL, MOD))
    # 5.3.5.2: a joined user below the invite level (BOB: 0) cannot authorise.
    assert "cannot invite" in room.reason(join(CAROL, BOB))
    # 5.3.5.2: a user who is not joined cannot authorise, whatever their level.
    room.member(MOD, "leave")
    assert "joined member" in room.reason(join(CAROL, MOD))
    # 5.3.5.2: without the key nobody authorised the join.
    assert "joined member" in room.reason(room.member_event(CAROL, "join"))
    # 5.3.5.1: invited (or joined) users need no authorisation.
    room.member(CAROL, "invite", sender=ALICE)
    assert room.allows(room.member_event(CAROL, "join"))


def test_v12_creator_can_authorise_restricted_join_without_power_levels_entry():
    # Spec v12: creators have infinite power, so they always reach the invite level.
    room = Room.standard("12", join_rule="restricted", invite=100)
    event = room.member_event(CAROL, "join", join_authorised_via_users_server=ALICE)
    event.pdu.update(signed_by(ALICE))
    assert room.allows(event)


def test_public_room_admits_anyone(version):
    # Spec v12 5.3.6.
    room = Room.standard(version, join_rule="public")
    assert room.allows(room.member_event(CAROL, "join"))


@pytest.mark.parametrize("rule", ["private", "unheard_of"])
def test_other_join_rules_reject(version, rule):
    # Spec v12 5.3.7: any other join rule rejects (private is reserved, never defined).
    room = Room.standard(version, join_rule=rule)
    assert "does not allow joining" in room.reason(room.member_event(CAROL, "join"))


def test_join_rule_boundaries_by_version():
    # Spec v7 4.3.4 adds knock; v8 4.3.5 adds restricted; v10 4.3.5 adds knock_restricted.
    # Before, the rule is unknown: 4.3.7 rejects even the invited for an unknown rule.
    def joins(version, rule, invited):
        room = Room.standard(version, join_rule=rule)
        if invited:
            room.member(BOB, "invite", sender=ALICE)
        return room.allows(room.member_event(BOB, "join"))

    assert not joins("6", "knock", invited=True)
    assert joins("7", "knock", invited=True)
    assert not joins("7", "restricted", invited=True)
    assert joins("8", "restricted", invited=True)
    assert not joins("9", "knock_restricted", invited=True)
    assert joins("10", "knock_restricted", invited=True)


# ---- 5.4 invite ---------------------------------------------------------------------------------


def test_invite_by_joined_member_with_invite_level(version):
    # Spec v12 5.4.4: sender level >= invite level (default 0) -> allow.
    room = joined(Room.standard(version), BOB)
    assert room.allows(room.member_event(CAROL, "invite", sender=BOB))


def test_invite_below_invite_level(version):
    # Spec v12 5.4.5: otherwise reject.
    room = joined(Room.standard(version, invite=50), BOB)
    assert "invite level" in room.reason(room.member_event(CAROL, "invite", sender=BOB))
    assert room.allows(room.member_event(CAROL, "invite", sender=MOD))


def test_invite_needs_joined_sender(version):
    # Spec v12 5.4.2: an invited (not joined) sender cannot invite.
    room = Room.standard(version)
    room.member(BOB, "invite", sender=ALICE)
    assert "not joined" in room.reason(room.member_event(CAROL, "invite", sender=BOB))


@pytest.mark.parametrize("membership", ["join", "ban"])
def test_cannot_invite_joined_or_banned(version, membership):
    # Spec v12 5.4.3: target's membership join or ban -> reject.
    room = Room.standard(version, join_rule="public")
    if membership == "join":
        room.member(BOB, "join")
    else:
        room.member(BOB, "ban", sender=ALICE)
    assert membership in room.reason(room.member_event(BOB, "invite", sender=ALICE))


@pytest.mark.parametrize("membership", ["invite", "leave", "knock"])
def test_can_invite_again_after_leave_invite_or_knock(version, membership):
    room = Room.standard(version, join_rule="knock")
    room.member(BOB, membership, sender=ALICE if membership == "invite" else BOB)
    assert room.allows(room.member_event(BOB, "invite", sender=ALICE))


# ---- 5.4.1 third party invite -------------------------------------------------------------------


IS_KEY = SigningKey(b"\x01" * 32)
TOKEN = "tok123"


def third_party(
    room: Room, target=CAROL, *, sender=ALICE, token=TOKEN, key=IS_KEY, signed_extra=None
):
    signed = {"mxid": target, "token": token, **(signed_extra or {})}
    signature = key.sign(encode_canonical_json(signed)).signature
    signed["signatures"] = {"id.example.org": {"ed25519:0": encode_base64(signature)}}
    return room.member_event(
        target,
        "invite",
        sender=sender,
        third_party_invite={"display_name": "c...@example.com", "signed": signed},
    )


def tpi_room(version, sender=ALICE, **tpi_content):
    room = joined(Room.standard(version), BOB)
    content = tpi_content or {"public_key": encode_base64(bytes(IS_KEY.verify_key))}
    room.add(room.event("m.room.third_party_invite", sender, content, state_key=TOKEN))
    return room


def test_third_party_invite_with_valid_signature(version):
    # Spec v12 5.4.1.7: a signature of `signed` verifying with the invite's public_key -> allow.
    room = tpi_room(version)
    assert room.allows(third_party(room))


def test_third_party_invite_with_keys_in_public_keys_and_urlsafe(version):
    # Spec v12 5.4.1.7.2: the keys in `public_keys` count too; keys may use the URL-safe
    # alphabet (m.room.third_party_invite schema).
    other = SigningKey(b"\x02" * 32)
    room = tpi_room(
        version,
        public_key=encode_base64(bytes(other.verify_key)),
        public_keys=[
            {"public_key": "junk"},
            {"public_key": encode_base64_urlsafe(bytes(IS_KEY.verify_key))},
        ],
    )
    assert room.allows(third_party(room))
    assert room.allows(third_party(room, key=other))


def test_third_party_invite_with_wrong_key(version):
    # Spec v12 5.4.1.8: no signature matches any key -> reject.
    room = tpi_room(version)
    event = third_party(room, key=SigningKey(b"\x03" * 32))
    assert "not signed" in room.reason(event)


def test_third_party_invite_with_tampered_signed_block(version):
    # Spec v12 5.4.1.7: the signature covers `signed` (minus signatures): changing it breaks it.
    room = tpi_room(version)
    event = third_party(room, signed_extra={"extra": 1})
    event.content["third_party_invite"]["signed"]["extra"] = 2
    assert "not signed" in room.reason(event)


def test_third_party_invite_without_signatures(version):
    room = tpi_room(version)
    event = third_party(room)
    del event.content["third_party_invite"]["signed"]["signatures"]
    assert "not signed" in room.reason(event)


def test_third_party_invite_of_banned_target(version):
    # Spec v12 5.4.1.1: a banned target cannot be invited, even with a valid signature.
    room = tpi_room(version)
    room.member(CAROL, "ban", sender=ALICE)
    assert "banned" in room.reason(third_party(room))


def test_third_party_invite_without_signed(version):
    # Spec v12 5.4.1.2.
    room = tpi_room(version)
    event = room.member_event(CAROL, "invite", sender=ALICE, third_party_invite={"x": 1})
    assert "no signed" in room.reason(event)
    junk = room.member_event(CAROL, "invite", sender=ALICE, third_party_invite="junk")
    assert "no signed" in room.reason(junk)


@pytest.mark.parametrize("missing", ["mxid", "token"])
def test_third_party_invite_signed_needs_mxid_and_token(version, missing):
    # Spec v12 5.4.1.3.
    room = tpi_room(version)
    event = third_party(room)
    del event.content["third_party_invite"]["signed"][missing]
    assert "lacks mxid or token" in room.reason(event)


def test_third_party_invite_mxid_must_be_target(version):
    # Spec v12 5.4.1.4: signed.mxid must equal the state_key.
    room = tpi_room(version)
    event = third_party(room)
    event.pdu["state_key"] = ZED
    assert "mxid" in room.reason(event)


def test_third_party_invite_needs_matching_invite_event(version):
    # Spec v12 5.4.1.5: an m.room.third_party_invite whose state_key is the token.
    room = tpi_room(version)
    assert "no m.room.third_party_invite" in room.reason(third_party(room, token="other"))


def test_third_party_invite_sender_must_be_invite_sender(version):
    # Spec v12 5.4.1.6: only the sender of the m.room.third_party_invite may redeem it.
    room = tpi_room(version, sender=MOD)
    assert "did not send" in room.reason(third_party(room))
    assert room.allows(third_party(room, sender=MOD))


def test_third_party_invite_does_not_consult_sender_membership(version):
    # Spec v12 5.4.1.7 allows before 5.4.2: the redeeming sender need not be joined any more.
    room = tpi_room(version, sender=BOB)
    room.member(BOB, "leave")
    assert room.allows(third_party(room, sender=BOB))


# ---- 5.5 leave ----------------------------------------------------------------------------------


@pytest.mark.parametrize("membership", ["join", "invite", "knock"])
def test_self_leave_from_join_invite_knock(version, membership):
    # Spec v12 5.5.1 (v7+ includes knock): leaving (rejecting, retracting) is allowed.
    room = Room.standard(version, join_rule="knock")
    room.member(BOB, membership, sender=ALICE if membership == "invite" else BOB)
    assert room.allows(room.member_event(BOB, "leave"))


@pytest.mark.parametrize("membership", [None, "leave", "ban"])
def test_self_leave_from_other_states(version, membership):
    # Spec v12 5.5.1 "if and only if": banned, left or never-seen users cannot leave.
    room = Room.standard(version, join_rule="public")
    if membership == "leave":
        room.member(BOB, "join")
        room.member(BOB, "leave")
    elif membership == "ban":
        room.member(BOB, "ban", sender=ALICE)
    assert "cannot leave" in room.reason(room.member_event(BOB, "leave"))


def test_self_leave_from_knock_before_v7():
    # Spec v6 4.4.1: only invite or join (knock does not exist; a stored knock cannot leave).
    room = Room.standard("6")
    room.member(BOB, "knock")
    assert not room.allows(room.member_event(BOB, "leave"))


def test_kick_needs_joined_sender(version):
    # Spec v12 5.5.2.
    room = joined(Room.standard(version), BOB)
    room.member(MOD, "leave")
    assert "not joined" in room.reason(room.member_event(BOB, "leave", sender=MOD))


def test_kick_with_kick_level_above_target(version):
    # Spec v12 5.5.4: sender >= kick level (50) and target below sender -> allow.
    room = joined(Room.standard(version), BOB)
    assert room.allows(room.member_event(BOB, "leave", sender=MOD))
    # Kicking an invited user (revoking the invite) works the same.
    room.member(CAROL, "invite", sender=ALICE)
    assert room.allows(room.member_event(CAROL, "leave", sender=MOD))


def test_kick_of_equal_or_higher_level_is_rejected(version):
    # Spec v12 5.5.5: target level not below the sender's -> reject.
    room = joined(Room.standard(version), BOB)
    room.power_levels(
        {
            **room.state[("m.room.power_levels", "")].content,
            "users": {**room.state[("m.room.power_levels", "")].content["users"], BOB: 50},
        }
    )
    assert "cannot kick" in room.reason(room.member_event(BOB, "leave", sender=MOD))
    assert "cannot kick" in room.reason(room.member_event(ALICE, "leave", sender=MOD))


def test_kick_below_kick_level_is_rejected(version):
    # Spec v12 5.5.5: sender below the kick level -> reject, even against a lower target.
    room = joined(Room.standard(version, kick=75), BOB)
    assert "cannot kick" in room.reason(room.member_event(BOB, "leave", sender=MOD))


def test_unban_needs_ban_level(version):
    # Spec v12 5.5.3: target banned and sender below the ban level -> reject; with both the
    # kick and the ban level (and above the target) -> 5.5.4 allow.
    room = Room.standard(version, kick=0, ban=60)
    room.member(BOB, "ban", sender=ALICE)
    assert "unban" in room.reason(room.member_event(BOB, "leave", sender=MOD))
    assert room.allows(room.member_event(BOB, "leave", sender=ALICE))


# ---- 5.6 ban ------------------------------------------------------------------------------------


def test_ban_with_ban_level_above_target(version):
    # Spec v12 5.6.2: allow; the target need not be in the room.
    room = joined(Room.standard(version), BOB)
    assert room.allows(room.member_event(BOB, "ban", sender=MOD))
    assert room.allows(room.member_event(CAROL, "ban", sender=MOD))


def test_ban_needs_joined_sender(version):
    # Spec v12 5.6.1.
    room = Room.standard(version)
    room.member(MOD, "leave")
    assert "not joined" in room.reason(room.member_event(BOB, "ban", sender=MOD))


def test_ban_below_ban_level_or_of_equal_level(version):
    # Spec v12 5.6.3: otherwise reject.
    room = joined(Room.standard(version, ban=60), BOB)
    assert "cannot ban" in room.reason(room.member_event(BOB, "ban", sender=MOD))
    assert "cannot ban" in room.reason(room.member_event(MOD, "ban", sender=BOB))
    assert "cannot ban" in room.reason(room.member_event(ALICE, "ban", sender=MOD))


def test_v12_creators_cannot_be_kicked_or_banned_by_anyone():
    # Spec v12: creators' level is infinite: no sender's level is ever above it, not even an
    # additional creator's (infinite is not above infinite).
    room = Room("12", create_content={"additional_creators": [BOB]})
    room.member(ALICE, "join")
    room.power_levels({"users": {MOD: 100}})
    room.join_rule("public")
    room.member(BOB, "join")
    room.member(MOD, "join")
    assert not room.allows(room.member_event(ALICE, "ban", sender=MOD))
    assert not room.allows(room.member_event(ALICE, "leave", sender=MOD))
    assert not room.allows(room.member_event(ALICE, "ban", sender=BOB))
    assert room.allows(room.member_event(MOD, "ban", sender=BOB))


@pytest.mark.parametrize("version", ["10", "11"])
def test_pre_v12_creator_is_an_ordinary_user_once_power_levels_exist(version):
    # Before v12 the creator has no power beyond their power levels entry: a 100 bans a 99
    # creator.
    room = joined(Room.standard(version), BOB)
    users = {ALICE: 99, BOB: 100, MOD: 50}
    room.power_levels({"users": users})
    assert room.allows(room.member_event(ALICE, "ban", sender=BOB))


# ---- 5.7 knock ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["knock", "knock_restricted"])
def test_knock_allowed(version, rule):
    # Spec v12 5.7.3: join rule knock (v10+: or knock_restricted), own knock, not banned /
    # invited / joined -> allow. Knocking needs no membership and no power.
    room = Room.standard(version, join_rule=rule)
    assert room.allows(room.member_event(CAROL, "knock"))
    room.member(CAROL, "knock")
    room.member(CAROL, "leave")
    assert room.allows(room.member_event(CAROL, "knock"))


@pytest.mark.parametrize("rule", ["invite", "public", "restricted"])
def test_knock_needs_knock_join_rule(version, rule):
    # Spec v12 5.7.1.
    room = Room.standard(version, join_rule=rule)
    assert "knocking" in room.reason(room.member_event(CAROL, "knock"))


def test_knock_for_someone_else(version):
    # Spec v12 5.7.2.
    room = Room.standard(version, join_rule="knock")
    assert "another user" in room.reason(room.member_event(CAROL, "knock", sender=MOD))


@pytest.mark.parametrize("membership", ["ban", "invite", "join"])
def test_knock_when_banned_invited_or_joined(version, membership):
    # Spec v12 5.7.4.
    room = Room.standard(version, join_rule="knock")
    if membership == "join":
        joined(room, CAROL)
    else:
        room.member(CAROL, membership, sender=ALICE)
    assert "cannot knock" in room.reason(room.member_event(CAROL, "knock"))


def test_knock_version_boundaries():
    # Spec v7 adds knock (v1-v6: unknown membership, 5.6/4.6); v10 adds knock_restricted.
    def knocks(version, rule):
        room = Room.standard(version, join_rule=rule)
        return room.allows(room.member_event(CAROL, "knock"))

    assert not knocks("6", "knock")
    assert knocks("7", "knock")
    assert not knocks("9", "knock_restricted")
    assert knocks("10", "knock_restricted")
