"""What a room may be: versions, invites at creation, join rules, history visibility, the
TI-M defaults and public rooms staying local (REQUIREMENTS.md "Rooms and end-to-end encryption":
A_25323-01, A_25368-01, A_26202/A_26203, A_25324-01 .. A_28587, A_26515-01, A_28590).

Spec: client-server API "POST /_matrix/client/v3/createRoom" (presets, initial_state,
room_version, invite) and the state events m.room.join_rules / m.room.history_visibility.
Join rules and history visibility are checked at creation AND on every later change.
"""

from __future__ import annotations

import re
from typing import Any

from compliance.hooks import ALLOW, Decision, Deny, Hook, Rewrite
from compliance.policies import state as room_state
from compliance.profiles import ProfileSettings
from homeserver.protocol.errors import Errcode

JOIN_RULES = ("m.room.join_rules", "")
HISTORY = ("m.room.history_visibility", "")


def policies(s: ProfileSettings) -> list[tuple[Hook, Any]]:
    out: list[tuple[Hook, Any]] = []
    if (s.allowed_create_room_versions is not None or s.max_invites_on_create is not None
            or s.forbidden_join_rules or s.forbid_world_readable or s.forbid_public_rooms):
        out.append((Hook.ROOM_CREATE, room_create))
    if s.default_create_room_version or s.tim_room_defaults or s.public_rooms_local_only:
        out.append((Hook.ROOM_CREATE, room_create_defaults))
    if s.forbidden_join_rules or s.forbidden_join_rule_changes or s.forbid_world_readable:
        out.append((Hook.CLIENT_SEND, client_send))
    if s.public_rooms_local_only or s.forbidden_join_rules:
        out.append((Hook.JOIN_REMOTE_ROOM, join_remote_room))
    if s.public_rooms_local_only:
        out.append((Hook.FEDERATION_REQUEST, federation_public_rooms))
    return out


def room_create(ctx: dict[str, Any], s: ProfileSettings) -> Decision:
    request = ctx["value"]
    version = request.get("room_version")
    allowed = s.allowed_create_room_versions
    if allowed is not None and version is not None and version not in allowed:
        return Deny("room_rules.room_version",
                    f"This server creates rooms of version {' or '.join(allowed)} only",
                    errcode=Errcode.UNSUPPORTED_ROOM_VERSION, status=400)
    limit = s.max_invites_on_create
    if limit is not None and ctx.get("invite_count", 0) > limit:
        return Deny("room_rules.create_invite_limit",
                    f"createRoom may invite at most {limit} user(s); invite the others later")
    if s.forbid_public_rooms and request.get("visibility") == "public":
        return Deny("room_rules.public_room", "This server does not allow public rooms")
    state = room_state.requested_state(request)
    if state is None:
        return ALLOW
    return _state_rules(state, s, s.forbidden_join_rules)


def _state_rules(
    state: dict[tuple[str, str], dict], s: ProfileSettings, forbidden: tuple[str, ...]
) -> Decision:
    join_rules = state.get(JOIN_RULES)
    if join_rules is not None and join_rules.get("join_rule") in forbidden:
        return Deny("room_rules.join_rule",
                    "This server does not allow that join rule (only invite-only rooms)")
    history = state.get(HISTORY)
    if s.forbid_world_readable and history is not None \
            and history.get("history_visibility") == "world_readable":
        return Deny("room_rules.world_readable",
                    "This server does not allow world_readable history visibility")
    return ALLOW


def room_create_defaults(ctx: dict[str, Any], s: ProfileSettings) -> Decision:
    """Rewrite createRoom: the profile's default room version, the TI-M room defaults
    (invite-only, history `invited`; what the request sets itself wins) and m.federate=false
    for public rooms."""
    request = dict(ctx["value"])
    if s.default_create_room_version and request.get("room_version") is None:
        request["room_version"] = s.default_create_room_version
    explicit = room_state.explicit_initial_state(request)
    if s.tim_room_defaults:
        additions = []
        if JOIN_RULES not in explicit and request.get("preset") is None \
                and request.get("visibility", "private") == "private":
            additions.append((JOIN_RULES[0], {"join_rule": "invite"}))
        if HISTORY not in explicit:
            additions.append((HISTORY[0], {"history_visibility": "invited"}))
        request = room_state.with_initial_state(request, additions)
    if s.public_rooms_local_only:
        state = room_state.requested_state(request) or {}
        rule = (state.get(JOIN_RULES) or {}).get("join_rule")
        creation = request.get("creation_content")
        if (rule == "public" or request.get("visibility") == "public") \
                and isinstance(creation or {}, dict):
            request["creation_content"] = {**(creation or {}), "m.federate": False}
    if request == ctx["value"]:
        return ALLOW
    return Rewrite("room_rules.defaults", request)


def client_send(ctx: dict[str, Any], s: ProfileSettings) -> Decision:
    """Later state changes: the same join-rule and history rules as at creation, plus the
    join rules that may only be set at creation (TI-M forbidden features: no public later)."""
    ev = ctx["value"]
    key = (ev["type"], ev["state_key"])
    if key not in (JOIN_RULES, HISTORY) or not isinstance(ev["content"], dict):
        return ALLOW
    if key == JOIN_RULES and ev["content"].get("join_rule") in s.forbidden_join_rule_changes:
        return Deny("room_rules.join_rule_change",
                    "This server does not allow changing a room's join rule to that value")
    forbidden = s.forbidden_join_rules
    return _state_rules({key: ev["content"]}, s, forbidden)


def join_remote_room(ctx: dict[str, Any], s: ProfileSettings) -> Decision:
    """A_28590: local users do not join public rooms on other servers (nor, under ePA, rooms
    with any join rule this server forbids). The join rule comes from the context's
    `join_rule` when the caller names it, else from the room state passed as the hook value."""
    rule = ctx.get("join_rule")
    if rule is None and ctx.get("value") is not None:
        join_rules = room_state.state_list_content(ctx["value"], *JOIN_RULES) or {}
        rule = join_rules.get("join_rule")
    forbidden = (*s.forbidden_join_rules, *(("public",) if s.public_rooms_local_only else ()))
    if rule in forbidden:
        return Deny("room_rules.remote_public_room",
                    "This server does not allow joining public rooms on other servers")
    return ALLOW


# Spec: server-server API "Published Room Directory".
PUBLIC_ROOMS_PATH = re.compile(r"^/_matrix/federation/v1/publicRooms/?$")


def federation_public_rooms(ctx: dict[str, Any], s: ProfileSettings) -> Decision:
    """A_26515-01, A_26520: public rooms stay local, so other servers may not list our room
    directory (GET/POST /_matrix/federation/v1/publicRooms -> 403 M_FORBIDDEN)."""
    if PUBLIC_ROOMS_PATH.match(ctx.get("path") or ""):
        return Deny("room_rules.federation_public_rooms",
                    "This server does not publish its room directory to other servers")
    return ALLOW
