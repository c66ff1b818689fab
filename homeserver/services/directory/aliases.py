"""Room aliases: create, resolve, delete, list a room's local aliases.

Spec: client-server API "Room aliases" (PUT/GET/DELETE /directory/room/{roomAlias},
GET /rooms/{roomId}/aliases).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, RoomAlias, RoomID, UserID
from homeserver.services.directory.canonical_alias import KEY as CANONICAL_KEY
from homeserver.services.directory.power import check_room_admin, is_joined
from homeserver.services.rooms.read import is_world_readable
from homeserver.storage import aliases as alias_store
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage import state as state_store


def parse_alias(text: Any) -> RoomAlias:
    """Spec: 400 M_INVALID_PARAM "Room alias invalid"."""
    try:
        return RoomAlias.parse(text)
    except (InvalidIdentifier, TypeError) as e:
        raise MatrixError(400, Errcode.INVALID_PARAM, f"Room alias invalid: {e}") from None


def parse_room_id(text: Any) -> str:
    try:
        return str(RoomID.parse(text))
    except (InvalidIdentifier, TypeError):
        raise MatrixError(400, Errcode.INVALID_PARAM, f"{text!r} is not a room ID") from None


def _is_local(alias: RoomAlias) -> bool:
    return str(alias.server_name) == settings.PALISADE.server_name


def do_create_alias(
    user_id: str, alias_text: str, body: dict[str, Any], *, is_server_admin: bool
) -> None:
    """Map a local alias to a room the user is joined to (server admins: any known room)."""
    alias = parse_alias(alias_text)
    if not _is_local(alias):
        raise MatrixError(400, Errcode.INVALID_PARAM, "Room alias must be on this server")
    if "room_id" not in body:
        raise MatrixError(400, Errcode.MISSING_PARAM, "room_id is required")
    room_id = parse_room_id(body["room_id"])
    if room_store.room_version(room_id) is None:
        raise MatrixError(404, Errcode.NOT_FOUND, "Room not found")
    if not is_server_admin and not is_joined(room_id, user_id):
        raise MatrixError(403, Errcode.FORBIDDEN, "You are not in this room")
    with transaction.atomic():
        # Spec: 409 M_UNKNOWN "Room alias ... already exists".
        if not alias_store.try_create_alias(str(alias), room_id, user_id):
            raise MatrixError(409, Errcode.UNKNOWN, f"Room alias {alias} already exists.")
        record(
            AuditAction.ROOM_ALIAS_CREATED,
            actor=user_id,
            actor_type=ActorType.USER,
            target=room_id,
            details={"alias": str(alias)},
        )


def resolve(alias_text: str) -> dict[str, Any]:
    alias = parse_alias(alias_text)
    if not _is_local(alias):
        # Spec: server-server "Querying for information": GET /query/directory.
        from homeserver.services.federation.queries import remote_alias

        return remote_alias(str(alias), str(alias.server_name))
    room_id = alias_store.resolve_alias(str(alias))
    if room_id is None:
        raise MatrixError(404, Errcode.NOT_FOUND, f"Room alias {alias} not found.")
    return {"room_id": room_id, "servers": servers_in_room(room_id)}


def servers_in_room(room_id: str) -> list[str]:
    """Servers with joined members, this server first (clients use them as `via`)."""
    ours = settings.PALISADE.server_name
    members = state_store.room_members(room_id)
    servers = {str(UserID.parse_historical(u).server_name) for u in members}
    servers.discard(ours)
    return [ours, *sorted(servers)]


def do_delete_alias(user_id: str, alias_text: str, *, is_server_admin: bool) -> None:
    """The alias's creator, a room admin (power to send m.room.canonical_alias) or a server
    admin may delete it. The room's canonical alias event stops advertising it when the user
    may change that event (spec: a server updating it still deletes when it may not)."""
    alias = parse_alias(alias_text)
    rec = alias_store.get_alias(str(alias)) if _is_local(alias) else None
    if rec is None:
        raise MatrixError(404, Errcode.NOT_FOUND, f"Room alias {alias} not found.")
    if rec.creator == user_id:
        role = "creator"
    else:
        check_room_admin(rec.room_id, user_id, is_server_admin=is_server_admin,
                         what="delete this alias")
        role = "server_admin" if is_server_admin else "room_admin"
    with transaction.atomic():
        if not alias_store.delete_alias(rec.alias):
            raise MatrixError(404, Errcode.NOT_FOUND, f"Room alias {alias} not found.")
        record(
            AuditAction.ROOM_ALIAS_DELETED,
            actor=user_id,
            actor_type=ActorType.USER,
            target=rec.room_id,
            details={"alias": rec.alias, "as": role},
        )
        _stop_advertising(rec.room_id, rec.alias, user_id)


def _stop_advertising(room_id: str, alias: str, user_id: str) -> None:
    from homeserver.services.events.send import do_send_event

    eid = state_store.current_state_ids(room_id, [CANONICAL_KEY]).get(CANONICAL_KEY)
    ev = event_store.get_event(eid) if eid else None
    if ev is None:
        return
    content = dict(ev.content)
    alt = content.get("alt_aliases")
    changed = False
    if content.get("alias") == alias:
        del content["alias"]
        changed = True
    if isinstance(alt, list) and alias in alt:
        content["alt_aliases"] = [a for a in alt if a != alias]
        changed = True
    if not changed or not is_joined(room_id, user_id):
        return
    try:
        do_send_event(room_id=room_id, sender=user_id, event_type="m.room.canonical_alias",
                      content=content, state_key="")
    except MatrixError:
        pass  # No power to change the event: the alias is deleted all the same.


def local_aliases(user_id: str, room_id_text: str, *, is_server_admin: bool) -> list[str]:
    """Spec: members (and anyone, for world_readable rooms) may list; others get 403."""
    room_id = parse_room_id(room_id_text)
    if not (is_server_admin or is_joined(room_id, user_id) or is_world_readable(room_id)):
        raise MatrixError(403, Errcode.FORBIDDEN, "You are not a member of the room.")
    return alias_store.aliases_for_room(room_id)

