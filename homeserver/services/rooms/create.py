"""createRoom. Spec: client-server API "POST /_matrix/client/v3/createRoom"."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from compliance.hooks import Hook, records_policy_denials
from compliance.hooks import run as run_policy
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, UserID
from homeserver.protocol.identifiers import RoomAlias as RoomAliasID
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.services.events.append import append_local_event, now_ms, persist_local_event
from homeserver.services.events.audit_membership import audit_membership_change
from homeserver.services.federation import invites, remote_membership
from homeserver.services.rooms.create_content import plan_initial_state
from homeserver.storage import rooms as room_store
from homeserver.storage.aliases import alias_exists, create_alias

logger = logging.getLogger(__name__)


def check_create_request(request: dict[str, Any]) -> tuple[str, str | None, list[str]]:
    """Validate what can be validated without writing: (room_version, alias, invitees)."""
    version = request.get("room_version", settings.PALISADE.rooms.default_version)
    if not isinstance(version, str) or version not in KNOWN_ROOM_VERSIONS:
        raise MatrixError(
            400, Errcode.UNSUPPORTED_ROOM_VERSION, f"Room version {version!r} is not supported"
        )
    alias = None
    if request.get("room_alias_name") is not None:
        name = request["room_alias_name"]
        if not isinstance(name, str) or not name or ":" in name or "#" in name:
            raise MatrixError(
                400, Errcode.INVALID_PARAM, "room_alias_name must be a bare localpart"
            )
        try:
            alias = str(RoomAliasID.parse(f"#{name}:{settings.PALISADE.server_name}"))
        except InvalidIdentifier as e:
            raise MatrixError(400, Errcode.INVALID_PARAM, f"Invalid alias: {e}") from None
    invitees = request.get("invite") or []
    if not isinstance(invitees, list):
        raise MatrixError(400, Errcode.BAD_JSON, "invite must be a list of user ids")
    for user in invitees:
        try:
            UserID.parse(user)
        except (InvalidIdentifier, TypeError):
            raise MatrixError(400, Errcode.INVALID_PARAM, f"Invalid user id {user!r}") from None
    for key in ("creation_content", "power_level_content_override"):
        if key in request and not isinstance(request[key], dict):
            raise MatrixError(400, Errcode.BAD_JSON, f"{key} must be an object")
    if request.get("visibility", "private") not in ("public", "private"):
        raise MatrixError(400, Errcode.BAD_JSON, "visibility must be public or private")
    return version, alias, invitees


@records_policy_denials
def do_create_room(
    creator: str, request: dict[str, Any], *, member_content: dict | None = None
) -> str:
    version, alias, invitees = check_create_request(request)
    request = run_policy(
        Hook.ROOM_CREATE,
        {
            "actor": creator,
            "target": "",
            "room_version": version,
            "invite_count": len(invitees),
            "preset": request.get("preset"),
        },
        value=request,
    )
    # A policy may have rewritten the request (e.g. the profile's room version): re-validate.
    version, alias, invitees = check_create_request(request)
    rv = KNOWN_ROOM_VERSIONS[version]
    for invitee in invitees:
        run_policy(Hook.INVITE, {"actor": creator, "target": invitee, "origin": "local"})
    remote_invitees = [u for u in invitees if not remote_membership.is_local_user(u)]
    for invitee in remote_invitees:
        # REQUIREMENTS.md A_25534: refused before anything is created.
        invites.check_invitee_server(creator, invitee, None)
    planned = plan_initial_state(request, creator, rv, alias)
    create_content = dict(request.get("creation_content") or {})
    create_content["room_version"] = version
    if not rv.implicit_room_creator:
        create_content["creator"] = creator
    with transaction.atomic():
        if alias and alias_exists(alias):
            raise MatrixError(400, Errcode.ROOM_IN_USE, f"Room alias {alias} already taken")
        if rv.room_id_from_create_event:
            create = append_local_event(
                room_id=None,
                room_version=rv,
                sender=creator,
                event_type="m.room.create",
                content=create_content,
                state_key="",
            )
            room_id = create.room_id
        else:
            room_id = f"!{secrets.token_urlsafe(18)}:{settings.PALISADE.server_name}"
            create = None
        room_store.insert_room(room_id, version, creator, now_ms())
        group = room_store.lock_room(room_id)
        if create is None:
            create = append_local_event(
                room_id=room_id,
                room_version=rv,
                sender=creator,
                event_type="m.room.create",
                content=create_content,
                state_key="",
            )
        group = persist_local_event(create, group)

        def send(etype: str, state_key: str, content: dict) -> None:
            nonlocal group
            ev = append_local_event(
                room_id=room_id,
                room_version=rv,
                sender=creator,
                event_type=etype,
                content=content,
                state_key=state_key,
            )
            group = persist_local_event(ev, group)
            if etype == "m.room.member":
                audit_membership_change(ev)

        send("m.room.member", creator, {"membership": "join", **(member_content or {})})
        for ev in planned:
            send(ev.type, ev.state_key, ev.content)
        for invitee in invitees:
            if invitee in remote_invitees:
                continue  # after the room exists: the invitee's server must co-sign
            send("m.room.member", invitee, _invite_content(request))
        if alias:
            create_alias(alias, room_id, creator)
        if request.get("visibility") == "public":
            room_store.set_public(room_id, True)
        record(
            AuditAction.ROOM_CREATED,
            actor=creator,
            actor_type=ActorType.USER,
            target=room_id,
            details={
                "room_version": version,
                "preset": request.get("preset"),
                "visibility": request.get("visibility", "private"),
                "invites": len(invitees),
                "alias": alias,
            },
        )
    for invitee in remote_invitees:
        # Spec: server-server API "Inviting to a room". The room exists whatever the other
        # server answers; a failed invite is logged, as a later /invite would report it.
        try:
            invites.invite_remote_user(creator, room_id, invitee, _invite_content(request))
        except MatrixError as e:
            logger.warning("createRoom %s: inviting %s failed: %s", room_id, invitee, e.error)
    return room_id


def _invite_content(request: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = {"membership": "invite"}
    if request.get("is_direct"):
        content["is_direct"] = True
    return content
