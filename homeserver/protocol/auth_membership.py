"""Authorization rules for m.room.member events.

Spec: rooms v12 auth rule 5 (= v6-v11 rule 4, = v1-v5 rule 5). Comments cite the v12 number, then
the v6-v11 and v1-v5 numbers where they differ: `v12 5.3.5 / v8-v11 4.3.5`. Knock (v7+) and
restricted joins (v8+, knock_restricted v10+) are switched on by RoomVersion flags.
"""

from __future__ import annotations

from homeserver.protocol.auth_context import (
    AUTHORISING_USER,
    JOIN_RULES_KEY,
    AuthError,
    AuthState,
    server_of,
)
from homeserver.protocol.auth_third_party_invite import check_third_party_invite

_JOIN = "join"
_INVITE = "invite"
_LEAVE = "leave"
_BAN = "ban"
_KNOCK = "knock"
_INVITE_OR_JOIN = frozenset((_INVITE, _JOIN))


def check_member_event(state: AuthState) -> None:
    """Return if the m.room.member event is allowed, raise AuthError if not."""
    event = state.event
    rv = state.room_version
    target = event.state_key
    membership = event.content.get("membership")
    # Spec: rooms v12 5.1 / v6-v11 4.1 / v1-v5 5.1: a state_key and a membership are required.
    if target is None or membership is None:
        raise AuthError("m.room.member event without state_key or membership")

    # Spec: rooms v12 5.2 / v8-v11 4.2 (restricted_join_rule): an event naming an authorising
    # user must be signed by that user's server. Signatures are cryptographically verified on
    # receipt (server-server "Checks performed on receipt of a PDU", step 2); here the rule
    # requires that a signature of that server is among them.
    if rv.restricted_join_rule and AUTHORISING_USER in event.content:
        authoriser = event.content[AUTHORISING_USER]
        signatures = event.pdu.get("signatures")
        if (
            type(authoriser) is not str
            or type(signatures) is not dict
            or not signatures.get(server_of(authoriser))
        ):
            raise AuthError(f"{AUTHORISING_USER} is set but its server did not sign the event")

    if membership == _JOIN:
        _check_join(state, target)
    elif membership == _INVITE:
        _check_invite(state, target)
    elif membership == _LEAVE:
        _check_leave(state, target)
    elif membership == _BAN:
        _check_ban(state, target)
    elif membership == _KNOCK and rv.knock_join_rule:
        _check_knock(state, target)
    else:
        # Spec: rooms v12 5.8 / v7-v11 4.8 / v6 4.6 / v1-v5 5.6: unknown membership (as is knock
        # before v7).
        raise AuthError(f"unknown membership {membership!r}")


def _join_rule(state: AuthState) -> str | None:
    join_rules = state.get(JOIN_RULES_KEY)
    if join_rules is None:
        # No m.room.join_rules event: the spec names no default; like the other homeservers we
        # read it as `invite` (a room without join rules admits only the invited).
        return _INVITE
    rule = join_rules.content.get("join_rule")
    return rule if type(rule) is str else None


def _check_join(state: AuthState, target: str) -> None:
    event = state.event
    rv = state.room_version
    create = state.create
    # Spec: rooms v12 5.3.1 / v11 4.3.1 / v1-v10 "the creator": if the only previous event is the
    # create event and the state_key is the creator (v11+: the create event's sender), allow.
    # (In v12 only the create event's sender qualifies, not additional_creators.)
    prev_events = event.prev_event_ids
    if len(prev_events) == 1 and prev_events[0] == create.event_id:
        creator = create.sender if rv.implicit_room_creator else create.content.get("creator")
        if target == creator:
            return
    # Spec: rooms v12 5.3.2 / v6-v11 4.3.2 / v1-v5 5.2.2: nobody can join someone else.
    if event.sender != target:
        raise AuthError("sender cannot join another user")
    current = state.membership(target)
    # Spec: rooms v12 5.3.3 / v6-v11 4.3.3 / v1-v5 5.2.3.
    if current == _BAN:
        raise AuthError("sender is banned")
    join_rule = _join_rule(state)
    # Spec: rooms v12 5.3.4 / v7-v11 4.3.4 (invite or knock) / v1-v6 (invite only): allowed if
    # invited or already joined. Otherwise this falls through to the rules below, which reject.
    if join_rule == _INVITE or (join_rule == _KNOCK and rv.knock_join_rule):
        if current in _INVITE_OR_JOIN:
            return
        raise AuthError(f"join rule is {join_rule} and sender is not invited")
    # Spec: rooms v12 5.3.5 / v10-v11 4.3.5 (restricted or knock_restricted) / v8-v9 4.3.5
    # (restricted only).
    if (join_rule == "restricted" and rv.restricted_join_rule) or (
        join_rule == "knock_restricted" and rv.knock_restricted_join_rule
    ):
        # 5.3.5.1: invited or already joined users need no authorising server.
        if current in _INVITE_OR_JOIN:
            return
        # 5.3.5.2: the authorising user must be joined and able to invite.
        authoriser = event.content.get("join_authorised_via_users_server")
        if type(authoriser) is not str or state.membership(authoriser) != _JOIN:
            raise AuthError("restricted join not authorised by a joined member")
        if state.level(authoriser) < state.named_level("invite"):
            raise AuthError("restricted join authorised by a user who cannot invite")
        # 5.3.5.3
        return
    # Spec: rooms v12 5.3.6 / v8-v11 4.3.6 / v6-v7 4.2.5 / v1-v5 5.2.5.
    if join_rule == "public":
        return
    # Spec: rooms v12 5.3.7 / v8-v11 4.3.7 / v6-v7 4.2.6 / v1-v5 5.2.6.
    raise AuthError(f"join rule {join_rule!r} does not allow joining")


def _check_invite(state: AuthState, target: str) -> None:
    content = state.event.content
    target_membership = state.membership(target)
    # Spec: rooms v12 5.4.1 / v8-v11 4.4.1 / v6-v7 4.3.1 / v1-v5 5.3.1: invite through a third party
    # invite. The sender's own membership is not consulted on this path.
    if "third_party_invite" in content:
        # 5.4.1.1
        if target_membership == _BAN:
            raise AuthError("target user is banned")
        check_third_party_invite(state, target, content["third_party_invite"])
        return
    # Spec: rooms v12 5.4.2 / v8-v11 4.4.2 / v6-v7 4.3.2 / v1-v5 5.3.2.
    if state.membership(state.sender) != _JOIN:
        raise AuthError("sender is not joined to the room")
    # Spec: rooms v12 5.4.3 / v8-v11 4.4.3 / v6-v7 4.3.3 / v1-v5 5.3.3.
    if target_membership == _JOIN or target_membership == _BAN:
        raise AuthError(f"target user's membership is {target_membership}")
    # Spec: rooms v12 5.4.4-5.4.5 / v8-v11 4.4.4-4.4.5 / v6-v7 4.3.4-4.3.5 / v1-v5 5.3.4-5.3.5.
    if state.sender_level < state.named_level("invite"):
        raise AuthError("sender's power level is below the invite level")


def _check_leave(state: AuthState, target: str) -> None:
    rv = state.room_version
    sender = state.sender
    # Spec: rooms v12 5.5.1 / v7-v11 4.5.1 (invite, join or knock) / v6 4.4.1 / v1-v5 5.4.1
    # (invite or join): leaving oneself is allowed if and only if invited, joined or (v7+) knocking.
    if sender == target:
        current = state.membership(sender)
        if current in _INVITE_OR_JOIN or (current == _KNOCK and rv.knock_join_rule):
            return
        raise AuthError(f"cannot leave with membership {current}")
    # Spec: rooms v12 5.5.2 / v7-v11 4.5.2 / v6 4.4.2 / v1-v5 5.4.2.
    if state.membership(sender) != _JOIN:
        raise AuthError("sender is not joined to the room")
    sender_level = state.sender_level
    # Spec: rooms v12 5.5.3 / v7-v11 4.5.3 / v6 4.4.3 / v1-v5 5.4.3: unbanning needs the ban level.
    if state.membership(target) == _BAN and sender_level < state.named_level("ban"):
        raise AuthError("sender's power level is below the ban level, cannot unban")
    # Spec: rooms v12 5.5.4-5.5.5 / v7-v11 4.5.4-4.5.5 / v6 4.4.4-4.4.5 / v1-v5 5.4.4-5.4.5.
    if sender_level >= state.named_level("kick") and state.level(target) < sender_level:
        return
    raise AuthError("sender cannot kick the target user")


def _check_ban(state: AuthState, target: str) -> None:
    # Spec: rooms v12 5.6.1 / v7-v11 4.6.1 / v6 4.5.1 / v1-v5 5.5.1.
    if state.membership(state.sender) != _JOIN:
        raise AuthError("sender is not joined to the room")
    # Spec: rooms v12 5.6.2-5.6.3 / v7-v11 4.6.2-4.6.3 / v6 4.5.2-4.5.3 / v1-v5 5.5.2-5.5.3.
    sender_level = state.sender_level
    if sender_level >= state.named_level("ban") and state.level(target) < sender_level:
        return
    raise AuthError("sender cannot ban the target user")


def _check_knock(state: AuthState, target: str) -> None:
    rv = state.room_version
    join_rule = _join_rule(state)
    # Spec: rooms v12 5.7.1 / v10-v11 4.7.1 (knock or knock_restricted) / v7-v9 4.7.1 (knock only).
    if not (
        join_rule == _KNOCK or (join_rule == "knock_restricted" and rv.knock_restricted_join_rule)
    ):
        raise AuthError(f"join rule {join_rule!r} does not allow knocking")
    # Spec: rooms v12 5.7.2 / v7-v11 4.7.2.
    if state.sender != target:
        raise AuthError("sender cannot knock for another user")
    # Spec: rooms v12 5.7.3-5.7.4 / v7-v11 4.7.3-4.7.4.
    current = state.membership(target)
    if current == _BAN or current == _INVITE or current == _JOIN:
        raise AuthError(f"cannot knock with membership {current}")
