"""Room upgrades. Spec: client-server API "Room Upgrades", POST /rooms/{roomId}/upgrade and
"Server behaviour" steps 1-6.

One transaction: the old room is locked, the replacement room is created (create event with
`predecessor`), the transferable state is copied, local aliases and the directory listing move,
the old room gets its tombstone and restricted power levels — or nothing at all happens.

Memberships (the spec leaves this to the server): the old room's joined members are INVITED to
the replacement room (issue 5 asks for it; a member the invite policy refuses is skipped and the
refusal audited) and its bans are copied, so a banned user cannot follow the tombstone. Members
of other servers get their invites once federation exists (issue 7).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from compliance.hooks import records_policy_denials
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, UserID
from homeserver.protocol.power_levels import (
    NAMED_LEVEL_DEFAULTS,
    named_level,
    parse_power_level,
    room_creators,
)
from homeserver.protocol.redaction import redact_pdu
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.services.directory.canonical_alias import advertised_aliases
from homeserver.services.directory.power import RoomPower, is_joined, room_power
from homeserver.services.directory.tags import copy_tags
from homeserver.services.events.send import do_send_event
from homeserver.services.rooms.create import do_create_room
from homeserver.services.rooms.membership import do_ban, do_invite
from homeserver.storage import aliases as alias_store
from homeserver.storage import directory as dir_store
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store
from homeserver.storage import state as state_store

# Spec step 3: the recommended transferable state (power levels are handled on their own).
COPIED_STATE = (
    "m.room.server_acl",
    "m.room.encryption",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.guest_access",
    "m.room.history_visibility",
    "m.room.join_rules",
)
# What the spec says a room without these events behaves like (createRoom presets would differ).
STATE_DEFAULTS = {
    "m.room.join_rules": {"join_rule": "invite"},
    "m.room.history_visibility": {"history_visibility": "shared"},
    "m.room.guest_access": {"guest_access": "forbidden"},
}
TOMBSTONE_BODY = "This room has been replaced"


def check_upgrade_request(body: dict[str, Any]) -> tuple[RoomVersion, list[str]]:
    if "new_version" not in body:
        raise MatrixError(400, Errcode.MISSING_PARAM, "new_version is required")
    version = body["new_version"]
    if not isinstance(version, str) or version not in KNOWN_ROOM_VERSIONS:
        raise MatrixError(
            400, Errcode.UNSUPPORTED_ROOM_VERSION, f"Room version {version!r} is not supported"
        )
    extra = body.get("additional_creators", [])
    if not isinstance(extra, list):
        raise MatrixError(400, Errcode.BAD_JSON, "additional_creators must be a list")
    for user in extra:
        try:
            UserID.parse(user)
        except (InvalidIdentifier, TypeError):
            raise MatrixError(400, Errcode.INVALID_PARAM, f"Invalid user id {user!r}") from None
    rv = KNOWN_ROOM_VERSIONS[version]
    # Spec: ignored when the new version has no additional creators.
    return rv, list(dict.fromkeys(extra)) if rv.room_id_from_create_event else []


def _contents(room_id: str, types: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    ids = state_store.current_state_ids(room_id, [(t, "") for t in types])
    records = event_store.get_event_records(ids.values())
    out = {}
    for (etype, _), eid in ids.items():
        ev = records[eid].event
        pdu = redact_pdu(ev.pdu, ev.room_version) if records[eid].redacted_by else ev.pdu
        out[etype] = dict(pdu.get("content", {}))
    return out


def _levels(old: dict[str, Any]) -> dict[str, Any]:
    """The old power levels as plain integers (older versions allowed strings), every named
    level explicit so the new room behaves the same."""
    out: dict[str, Any] = {name: named_level(old, name) for name in NAMED_LEVEL_DEFAULTS}
    for key in ("events", "notifications", "users"):
        mapping = old.get(key)
        if isinstance(mapping, dict):
            out[key] = {
                k: lv for k, v in mapping.items() if (lv := parse_power_level(v)) is not None
            }
    out.setdefault("events", {})
    out.setdefault("users", {})
    return out


def plan_power_levels(
    power: RoomPower, upgrader: str, new_rv: RoomVersion, extra_creators: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(power levels the new room is created with, power levels it ends with). The first lifts
    the upgrader to the highest level in the room while copying state, inviting and banning."""
    final = _levels(power.pl_content)
    users = final["users"]
    if new_rv.room_id_from_create_event:
        # Spec rooms v12: creators have infinite power and must not be listed in `users`.
        for creator in (upgrader, *extra_creators):
            users.pop(creator, None)
        return final, final
    if power.create is not None and power.room_version.room_id_from_create_event:
        # From v12 down: the old room's creators keep admin power.
        for creator in room_creators(power.create, power.room_version):
            users[creator] = max(users.get(creator, 0), 100)
    values = [v for k, v in final.items() if isinstance(v, int)]
    values += [*final["events"].values(), *users.values(), 100]
    initial = {**final, "users": {**users, upgrader: max(values)}}
    return initial, final


def _try_send(room_id: str, sender: str, event_type: str, content: dict[str, Any]) -> bool:
    """A best-effort step (spec: "if possible"); a refusal (e.g. no power) is not fatal."""
    try:
        do_send_event(
            room_id=room_id, sender=sender, event_type=event_type, content=content, state_key=""
        )
    except MatrixError:
        return False
    return True


@records_policy_denials
def do_upgrade_room(user_id: str, room_id: str, body: dict[str, Any]) -> str:
    new_rv, extra_creators = check_upgrade_request(body)
    if room_store.room_version(room_id) is None or not is_joined(room_id, user_id):
        raise MatrixError(403, Errcode.FORBIDDEN, f"User {user_id} is not in room {room_id}")
    # A denial from a nested service (an invite) that rolls back our transaction is audited
    # by our own boundary afterwards (see compliance.hooks.records_policy_denials).
    return _upgrade(user_id, room_id, new_rv, extra_creators)


def _upgrade(user_id: str, room_id: str, new_rv: RoomVersion, extra_creators: list[str]) -> str:
    with transaction.atomic():
        room_store.lock_room(room_id)
        power = room_power(room_id)
        assert power is not None
        # Spec step 1: the user may send m.room.tombstone.
        if not is_joined(room_id, user_id) or not power.may_send(user_id, "m.room.tombstone"):
            raise MatrixError(403, Errcode.FORBIDDEN, "You cannot upgrade this room")
        old_create = power.create.content if power.create is not None else {}
        state = _contents(room_id, (*COPIED_STATE, "m.room.canonical_alias"))
        canonical = state.pop("m.room.canonical_alias", None)
        for etype, default in STATE_DEFAULTS.items():
            state.setdefault(etype, default)

        # Spec step 2: the replacement room, its create event naming the predecessor.
        predecessor: dict[str, Any] = {"room_id": room_id}
        if not new_rv.room_id_from_create_event:  # Spec v1.16: MAY be omitted for v12+.
            last = event_store.room_timeline(room_id, limit=1)
            if last:
                predecessor["event_id"] = last[-1].event.event_id
        creation: dict[str, Any] = {"predecessor": predecessor}
        if "type" in old_create:
            creation["type"] = old_create["type"]
        if old_create.get("m.federate") is False:
            creation["m.federate"] = False
        if extra_creators:
            creation["additional_creators"] = extra_creators
        initial_pl, final_pl = plan_power_levels(power, user_id, new_rv, extra_creators)
        new_room = do_create_room(
            user_id,
            {
                "room_version": new_rv.identifier,
                "creation_content": creation,
                "power_level_content_override": initial_pl,
                # Spec step 3: transferable state (presets only fill what is absent).
                "initial_state": [
                    {"type": t, "state_key": "", "content": c} for t, c in state.items()
                ],
            },
        )

        members = state_store.room_members(room_id, ("join",))
        invited = 0
        for member in sorted(set(members) - {user_id}):
            try:
                do_invite(user_id, new_room, member)
                invited += 1
            except MatrixError:
                pass  # e.g. refused by the invite policy (audited there)
        banned = state_store.room_members(room_id, ("ban",))
        for target in sorted(banned):
            do_ban(user_id, new_room, target)

        # Spec step 4: local aliases move; the canonical alias follows them.
        moved = alias_store.move_aliases(room_id, new_room)
        if canonical is not None and moved:
            mapped = alias_store.existing_aliases(sorted(advertised_aliases(canonical)))
            content: dict[str, Any] = {}
            if mapped.get(canonical.get("alias")) == new_room:
                content["alias"] = canonical["alias"]
            alt = canonical.get("alt_aliases")
            if isinstance(alt, list):
                content["alt_aliases"] = [a for a in alt if mapped.get(a) == new_room]
            if content:
                _try_send(new_room, user_id, "m.room.canonical_alias", content)
            _try_send(room_id, user_id, "m.room.canonical_alias", {})
        if initial_pl != final_pl:
            do_send_event(room_id=new_room, sender=user_id, event_type="m.room.power_levels",
                          content=final_pl, state_key="")
        published = bool(dir_store.room_is_public(room_id))
        if published:
            room_store.set_public(new_room, True)
            room_store.set_public(room_id, False)

        # Spec step 5: the tombstone; step 6: only moderators may speak or invite in the old room.
        do_send_event(room_id=room_id, sender=user_id, event_type="m.room.tombstone",
                      content={"body": TOMBSTONE_BODY, "replacement_room": new_room},
                      state_key="")
        restricted = _restrict(power.pl_content) if power.power_levels is not None else None
        restricted_ok = restricted is not None and _try_send(
            room_id, user_id, "m.room.power_levels", restricted
        )
        copy_tags(user_id, room_id, new_room)
        record(
            AuditAction.ROOM_UPGRADED,
            actor=user_id,
            actor_type=ActorType.USER,
            target=room_id,
            details={
                "replacement_room": new_room,
                "old_version": power.room_version.identifier,
                "new_version": new_rv.identifier,
                "invited": invited,
                "bans_copied": len(banned),
                "aliases_moved": moved,
                "published": published,
                "old_room_restricted": restricted_ok,
            },
        )
    return new_room


def _restrict(old: dict[str, Any]) -> dict[str, Any] | None:
    """Spec step 6: events_default and invite to the greater of 50 and users_default + 1."""
    level = max(50, named_level(old, "users_default") + 1)
    content = dict(old)
    changed = False
    for name in ("events_default", "invite"):
        if named_level(old, name) < level:
            content[name] = level
            changed = True
    return content if changed else None
