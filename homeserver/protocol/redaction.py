"""The redaction algorithm: which parts of an event survive redaction, per room version.

It defines what event signatures and reference hashes (event ids) cover, so it runs on every
event sent or received, not just on redacted ones.

Spec: rooms/fragments v1-redactions (rooms v1-v5), v6-redactions (v6-v8), v9-redactions
(v9-v10), v11-redactions (v11, and v12 which keeps the v11 rules). The code branches only on
`room_version.redaction`.

The result is a new top-level dict with a new `content` dict; deeper values (e.g. the `users`
map of a power levels event) are shared with the input, not copied, so treat the result as
read-only. The input is never modified. Malformed input never raises: a non-object `content`
is redacted to `{}`, and a missing `content` stays missing.
"""

from __future__ import annotations

from typing import Any

from homeserver.protocol.room_versions import RedactionRules, RoomVersion

# Spec: v1-redactions (unchanged in v6 and v9): top-level keys kept by redaction.
_TOP_LEVEL_V1 = frozenset(
    {
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "prev_state",
        "auth_events",
        "origin",
        "origin_server_ts",
        "membership",
    }
)
# Spec: rooms v11, Redactions: top-level `origin`, `membership` and `prev_state` are no longer
# protected.
_TOP_LEVEL_V11 = _TOP_LEVEL_V1 - {"origin", "membership", "prev_state"}

_POWER_LEVELS_V1 = frozenset(
    {"ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"}
)

# Spec: v1-redactions: content keys kept, per event type; other types keep no content keys.
_CONTENT_V1: dict[str, frozenset[str]] = {
    "m.room.member": frozenset({"membership"}),
    "m.room.create": frozenset({"creator"}),
    "m.room.join_rules": frozenset({"join_rule"}),
    "m.room.power_levels": _POWER_LEVELS_V1,
    "m.room.aliases": frozenset({"aliases"}),
    "m.room.history_visibility": frozenset({"history_visibility"}),
}
# Spec: v6-redactions: m.room.aliases is no longer special.
_CONTENT_V6 = {k: v for k, v in _CONTENT_V1.items() if k != "m.room.aliases"}
# Spec: v9-redactions: member keeps join_authorised_via_users_server, join_rules keeps allow.
_CONTENT_V9 = {
    **_CONTENT_V6,
    "m.room.member": frozenset({"membership", "join_authorised_via_users_server"}),
    "m.room.join_rules": frozenset({"join_rule", "allow"}),
}
# Spec: v11-redactions: power_levels also keeps `invite`, m.room.redaction keeps `redacts`.
# m.room.create (all keys) and m.room.member (a nested `third_party_invite.signed`) are not
# plain key lists; _redact_content handles them before consulting this table.
_CONTENT_V11 = {
    "m.room.join_rules": _CONTENT_V9["m.room.join_rules"],
    "m.room.power_levels": _POWER_LEVELS_V1 | {"invite"},
    "m.room.history_visibility": _CONTENT_V9["m.room.history_visibility"],
    "m.room.redaction": frozenset({"redacts"}),
}

_RULES: dict[RedactionRules, tuple[frozenset[str], dict[str, frozenset[str]]]] = {
    RedactionRules.V1: (_TOP_LEVEL_V1, _CONTENT_V1),
    RedactionRules.V6: (_TOP_LEVEL_V1, _CONTENT_V6),
    RedactionRules.V9: (_TOP_LEVEL_V1, _CONTENT_V9),
    RedactionRules.V11: (_TOP_LEVEL_V11, _CONTENT_V11),
}


def redact_pdu(pdu: dict[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """Return the redacted form of `pdu` under `room_version`'s redaction rules."""
    rules = room_version.redaction
    top_level, content_keys = _RULES[rules]
    # Spec: rooms redaction fragments: strip every top-level key not in the list.
    redacted = {key: value for key, value in pdu.items() if key in top_level}
    if "content" in redacted:
        event_type = pdu.get("type")
        redacted["content"] = _redact_content(
            event_type if isinstance(event_type, str) else "",
            redacted["content"],
            rules,
            content_keys,
        )
    return redacted


def _redact_content(
    event_type: str,
    content: Any,
    rules: RedactionRules,
    content_keys: dict[str, frozenset[str]],
) -> dict[str, Any]:
    if not isinstance(content, dict):
        return {}
    if rules >= RedactionRules.V11:
        if event_type == "m.room.create":
            # Spec: v11-redactions: m.room.create allows all keys.
            return dict(content)
        if event_type == "m.room.member":
            return _redact_member_v11(content)
    keep = content_keys.get(event_type)
    if keep is None:
        # Spec: rooms redaction fragments: all other event types lose every content key.
        return {}
    return {key: value for key, value in content.items() if key in keep}


def _redact_member_v11(content: dict[str, Any]) -> dict[str, Any]:
    # Spec: v11-redactions: m.room.member allows membership and join_authorised_via_users_server
    # and additionally the `signed` key of the `third_party_invite` key.
    redacted = {
        key: content[key]
        for key in ("membership", "join_authorised_via_users_server")
        if key in content
    }
    invite = content.get("third_party_invite")
    # Ambiguity: the spec does not say what remains of a third_party_invite without `signed`
    # (or that is not an object); it is dropped, as nothing in it is protected.
    if isinstance(invite, dict) and "signed" in invite:
        redacted["third_party_invite"] = {"signed": invite["signed"]}
    return redacted
