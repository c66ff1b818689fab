"""Profiles: display name and avatar. Spec: client-server API "Profiles" (GET /profile/{userId},
GET/PUT /profile/{userId}/displayname|avatar_url) and "Events on Change of Profile Information":
a change is propagated as a new m.room.member join event in every room the user is joined to."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts.user_ids import local_user_from_path, server_name
from homeserver.services.events.send import do_send_event
from homeserver.storage import account_data as data_store
from homeserver.storage import accounts as account_store
from homeserver.storage import events as event_store
from homeserver.storage import state as state_store

logger = logging.getLogger(__name__)

FIELDS = ("displayname", "avatar_url")
MAX_DISPLAYNAME_LENGTH = 256
MAX_AVATAR_URL_LENGTH = 1024
# Keys of the previous join that describe that join, not the user: not carried forward (an
# authorising server's user may no longer be able to authorise; spec: restricted rooms).
DROPPED_MEMBER_KEYS = ("join_authorised_via_users_server", "reason")


def _local_profile(user_id_text: str) -> tuple[str, data_store.ProfileRecord]:
    user = local_user_from_path(user_id_text)
    if str(user.server_name) != server_name():
        # Other servers' users: get_profile / get_profile_field ask their server instead.
        raise MatrixError(404, Errcode.NOT_FOUND, "Profile not found")
    account = account_store.get_account(str(user))
    profile = data_store.get_profile(str(user))
    if account is None or account.deactivated or profile is None:
        raise MatrixError(404, Errcode.NOT_FOUND, "Profile not found")
    return str(user), profile


def _remote_server(user_id_text: str) -> str | None:
    user = local_user_from_path(user_id_text)
    return None if str(user.server_name) == server_name() else str(user.server_name)


def get_profile(user_id_text: str) -> dict[str, Any]:
    if (remote := _remote_server(user_id_text)) is not None:
        # Spec: server-server "Querying for information": GET /query/profile.
        from homeserver.services.federation.queries import remote_profile

        return remote_profile(str(local_user_from_path(user_id_text)), remote)
    _, profile = _local_profile(user_id_text)
    out = {}
    if profile.displayname:
        out["displayname"] = profile.displayname
    if profile.avatar_url:
        out["avatar_url"] = profile.avatar_url
    return out


def get_profile_field(user_id_text: str, field: str) -> dict[str, Any]:
    if (remote := _remote_server(user_id_text)) is not None:
        from homeserver.services.federation.queries import remote_profile

        return remote_profile(str(local_user_from_path(user_id_text)), remote, field)
    _, profile = _local_profile(user_id_text)
    value = getattr(profile, field)
    return {field: value} if value else {}


def _check_value(field: str, body: dict[str, Any]) -> str:
    if field not in body:
        raise MatrixError(400, Errcode.MISSING_PARAM, f"Missing key {field!r}")
    value = body[field]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MatrixError(400, Errcode.BAD_JSON, f"{field} must be a string")
    if field == "displayname" and len(value) > MAX_DISPLAYNAME_LENGTH:
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          f"displayname may be at most {MAX_DISPLAYNAME_LENGTH} characters")
    if field == "avatar_url" and value and (
        not value.startswith("mxc://") or len(value) > MAX_AVATAR_URL_LENGTH
    ):
        raise MatrixError(400, Errcode.INVALID_PARAM, "avatar_url must be an mxc:// URI")
    return value


def do_set_profile_field(requester: str, user_id_text: str, field: str,
                         body: dict[str, Any]) -> None:
    if field not in FIELDS:
        raise MatrixError(400, Errcode.INVALID_PARAM, f"Unknown profile field {field!r}")
    if str(local_user_from_path(user_id_text)) != requester:
        raise MatrixError(403, Errcode.FORBIDDEN, "Cannot set another user's profile")
    value = _check_value(field, body)
    with transaction.atomic():
        current = data_store.get_profile(requester)
        if current is None:
            raise MatrixError(404, Errcode.NOT_FOUND, "Profile not found")
        if getattr(current, field) == value:
            return
        data_store.set_profile_field(requester, field, value)
    propagate_to_rooms(requester, field, value)


def propagate_to_rooms(user_id: str, field: str, value: str) -> None:
    """A fresh join event per joined room, carrying the rest of the current member content.
    One transaction per room: a room that refuses it (power levels, policy) does not block
    the others."""
    for room_id in sorted(state_store.rooms_for_user(user_id, ("join",))):
        member = state_store.membership_of(room_id, user_id)
        if member is None or member[0] != "join":
            continue
        current = event_store.get_event(member[1])
        content = dict(current.content) if current is not None else {}
        for key in DROPPED_MEMBER_KEYS:
            content.pop(key, None)
        content["membership"] = "join"
        if value:
            content[field] = value
        else:
            content.pop(field, None)
        try:
            do_send_event(room_id=room_id, sender=user_id, event_type="m.room.member",
                          content=content, state_key=user_id)
        except MatrixError as e:
            logger.warning("profile change of %s not sent to %s: %s", user_id, room_id, e.error)
