"""Membership changes a local user makes: join, invite, leave, kick, ban, unban, forget.

Spec: client-server API "Room membership" endpoints. Each is one m.room.member event through
do_send_event (auth rules decide who may do what); invites also pass the `invite` policy hook.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from compliance.hooks import Hook, records_policy_denials
from compliance.hooks import run as run_policy
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, UserID
from homeserver.services.directory.tags import carry_tags_from_predecessor
from homeserver.services.events.send import check_sender_in_room, do_send_event
from homeserver.services.federation import invites, remote_membership
from homeserver.services.federation.membership_serve import is_resident
from homeserver.storage import state as state_store
from homeserver.storage.account_data import get_profile
from homeserver.storage.aliases import resolve_alias
from homeserver.storage.forgotten import mark_forgotten


def _member_content(membership: str, reason: Any, extra: dict | None = None) -> dict:
    content: dict[str, Any] = {"membership": membership, **(extra or {})}
    if reason is not None:
        if not isinstance(reason, str):
            raise MatrixError(400, Errcode.BAD_JSON, "reason must be a string")
        content["reason"] = reason
    return content


def _check_user_id(user_id: Any) -> str:
    try:
        return str(UserID.parse(user_id))
    except (InvalidIdentifier, TypeError):
        raise MatrixError(400, Errcode.INVALID_PARAM, f"Invalid user id {user_id!r}") from None


def _profile_content(user_id: str) -> dict:
    """Spec: m.room.member join events carry the user's displayname and avatar_url."""
    profile = get_profile(user_id)
    if profile is None:
        return {}
    return {k: v for k in ("displayname", "avatar_url") if (v := getattr(profile, k))}


def resolve_room(room_id_or_alias: str) -> str:
    if room_id_or_alias.startswith("#"):
        room_id = resolve_alias(room_id_or_alias)
        if room_id is None:
            raise MatrixError(404, Errcode.NOT_FOUND, f"Room alias {room_id_or_alias} not found")
        return room_id
    if not room_id_or_alias.startswith("!"):
        raise MatrixError(400, Errcode.INVALID_PARAM, "Expected a room id or alias")
    return room_id_or_alias


def do_join(
    user_id: str, room_id_or_alias: str, reason: Any = None, via: list[str] | None = None
) -> str:
    via = list(via or [])
    if room_id_or_alias.startswith("#") and remote_membership.is_remote_alias(room_id_or_alias):
        room_id, alias_servers = remote_membership.resolve_remote_alias(room_id_or_alias)
        via += alias_servers
    else:
        room_id = resolve_room(room_id_or_alias)
    current = state_store.membership_of(room_id, user_id)
    if current and current[0] == "join":
        return room_id  # Spec: joining a room you are in is a no-op that succeeds.
    if remote_membership.needs_remote_join(room_id):
        # Spec: server-server API "Joining Rooms": through a server that is in the room.
        extra = _member_content("join", reason, _profile_content(user_id))
        return remote_membership.join_remote_room(user_id, room_id, via, extra)
    do_send_event(
        room_id=room_id,
        sender=user_id,
        event_type="m.room.member",
        state_key=user_id,
        content=_member_content("join", reason, _profile_content(user_id)),
    )
    carry_tags_from_predecessor(user_id, room_id)  # Spec "Room upgrades": tags follow the user.
    return room_id


def do_knock(
    user_id: str, room_id_or_alias: str, reason: Any = None, via: list[str] | None = None
) -> str:
    """Spec: client-server API "POST /knock/{roomIdOrAlias}" (rooms v7+)."""
    via = list(via or [])
    if room_id_or_alias.startswith("#") and remote_membership.is_remote_alias(room_id_or_alias):
        room_id, alias_servers = remote_membership.resolve_remote_alias(room_id_or_alias)
        via += alias_servers
    else:
        room_id = resolve_room(room_id_or_alias)
    content = _member_content("knock", reason)
    if remote_membership.needs_remote_join(room_id):
        return remote_membership.knock_remote_room(user_id, room_id, via, content)
    do_send_event(
        room_id=room_id,
        sender=user_id,
        event_type="m.room.member",
        state_key=user_id,
        content=content,
    )
    return room_id


@records_policy_denials
def do_invite(sender: str, room_id: str, invitee: Any, reason: Any = None) -> None:
    invitee = _check_user_id(invitee)
    run_policy(
        Hook.INVITE, {"actor": sender, "target": invitee, "room_id": room_id, "origin": "local"}
    )
    remote = not remote_membership.is_local_user(invitee)
    if remote:
        invites.check_invitee_server(sender, invitee, room_id)
    current = state_store.membership_of(room_id, invitee)
    if current and current[0] in ("join", "ban"):
        raise MatrixError(
            403,
            Errcode.FORBIDDEN,
            f"{invitee} is already {current[0]}ed here"
            if current[0] == "ban"
            else f"{invitee} is already in the room",
        )
    if remote:
        # Spec: server-server API "Inviting to a room": the invitee's server co-signs first.
        check_sender_in_room(room_id, sender)
        invites.invite_remote_user(
            sender, room_id, invitee, _member_content("invite", reason)
        )
        return
    do_send_event(
        room_id=room_id,
        sender=sender,
        event_type="m.room.member",
        state_key=invitee,
        content=_member_content("invite", reason),
    )


def do_leave(user_id: str, room_id: str, reason: Any = None) -> None:
    current = state_store.membership_of(room_id, user_id)
    if current is None or current[0] in ("leave", "ban"):
        if current is None:
            raise MatrixError(403, Errcode.FORBIDDEN, f"User {user_id} is not in room {room_id}")
        return
    if current[0] in ("invite", "knock") and not is_resident(room_id):
        # Spec: server-server API "Leaving Rooms (Rejecting Invites)".
        reason = _member_content("leave", reason).get("reason")
        remote_membership.reject_remote_invite(user_id, room_id, reason)
        return
    do_send_event(
        room_id=room_id,
        sender=user_id,
        event_type="m.room.member",
        state_key=user_id,
        content=_member_content("leave", reason),
    )


def do_kick(sender: str, room_id: str, target: Any, reason: Any = None) -> None:
    target = _check_user_id(target)
    current = state_store.membership_of(room_id, target)
    if current is None or current[0] not in ("join", "invite", "knock"):
        raise MatrixError(403, Errcode.FORBIDDEN, f"{target} is not in the room")
    do_send_event(
        room_id=room_id,
        sender=sender,
        event_type="m.room.member",
        state_key=target,
        content=_member_content("leave", reason),
    )


def do_ban(sender: str, room_id: str, target: Any, reason: Any = None) -> None:
    target = _check_user_id(target)
    do_send_event(
        room_id=room_id,
        sender=sender,
        event_type="m.room.member",
        state_key=target,
        content=_member_content("ban", reason),
    )


def do_unban(sender: str, room_id: str, target: Any, reason: Any = None) -> None:
    target = _check_user_id(target)
    current = state_store.membership_of(room_id, target)
    if current is None or current[0] != "ban":
        raise MatrixError(403, Errcode.FORBIDDEN, f"{target} is not banned")
    do_send_event(
        room_id=room_id,
        sender=sender,
        event_type="m.room.member",
        state_key=target,
        content=_member_content("leave", reason),
    )


def do_forget(user_id: str, room_id: str) -> None:
    """Spec: forget requires that the user is not joined (or invited)."""
    current = state_store.membership_of(room_id, user_id)
    if current is not None and current[0] in ("join", "invite", "knock"):
        raise MatrixError(400, Errcode.UNKNOWN, "You must leave the room before forgetting it")
    with transaction.atomic():
        mark_forgotten(user_id, room_id)
