"""The server-default push rules and how a user's own rules are merged with them.

Spec: client-server API "Push Notifications" -> "Predefined Rules" (the rule definitions below
follow the spec's JSON, in the spec's order). The legacy body-mention rules
(.m.rule.contains_display_name, .m.rule.contains_user_name, .m.rule.roomnotif) were removed in
v1.17; Palisade still ships them because clients that predate intentional mentions (v1.7) rely
on them, and skips them for events carrying `m.mentions` (spec: "User and room mentions": those
rules "were disabled if the m.mentions field was present").

A user's stored push rules are a compact JSON document:

    {"rules": {kind: [rule, ...]},                  # the user's own rules, most important first
     "defaults": {rule_id: {"enabled": bool, "actions": [...]}}}   # changes to server defaults

`merged_ruleset` turns that into the ruleset clients see and the evaluator runs.
"""

from __future__ import annotations

import copy
from typing import Any

KINDS = ("override", "content", "room", "sender", "underride")
MASTER = ".m.rule.master"
LEGACY_MENTION_RULES = frozenset(
    {".m.rule.contains_display_name", ".m.rule.contains_user_name", ".m.rule.roomnotif"}
)
USER_ID = "\x00user_id"  # placeholders replaced per user
LOCALPART = "\x00localpart"

_SOUND = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}


def _match(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _rule(rule_id: str, conditions: list | None, actions: list, **extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"rule_id": rule_id, "default": True, "enabled": True}
    if conditions is not None:
        rule["conditions"] = conditions
    rule["actions"] = actions
    rule.update(extra)
    return rule


# Spec: "Default Override Rules", in the spec's order.
_OVERRIDE = [
    {**_rule(MASTER, [], []), "enabled": False},
    _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
    _rule(
        ".m.rule.invite_for_me",
        [
            _match("type", "m.room.member"),
            _match("content.membership", "invite"),
            _match("state_key", USER_ID),
        ],
        ["notify", _SOUND],
    ),
    _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
    _rule(
        ".m.rule.is_user_mention",
        [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids",
          "value": USER_ID}],
        ["notify", _SOUND, _HIGHLIGHT],
    ),
    _rule(
        ".m.rule.contains_display_name",
        [{"kind": "contains_display_name"}],
        ["notify", _SOUND, _HIGHLIGHT],
    ),
    _rule(
        ".m.rule.is_room_mention",
        [
            {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
            {"kind": "sender_notification_permission", "key": "room"},
        ],
        ["notify", _HIGHLIGHT],
    ),
    _rule(
        ".m.rule.roomnotif",
        [
            _match("content.body", "@room"),
            {"kind": "sender_notification_permission", "key": "room"},
        ],
        ["notify", _HIGHLIGHT],
    ),
    _rule(
        ".m.rule.tombstone",
        [_match("type", "m.room.tombstone"), _match("state_key", "")],
        ["notify", _HIGHLIGHT],
    ),
    _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
    _rule(
        ".m.rule.room.server_acl",
        [_match("type", "m.room.server_acl"), _match("state_key", "")],
        [],
    ),
    _rule(
        ".m.rule.suppress_edits",
        [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type",
          "value": "m.replace"}],
        [],
    ),
]

# Spec (up to v1.16): "Default Content Rules".
_CONTENT = [
    _rule(".m.rule.contains_user_name", None, ["notify", _SOUND, _HIGHLIGHT], pattern=LOCALPART),
]

# Spec: "Default Underride Rules", in the spec's order.
_UNDERRIDE = [
    _rule(".m.rule.call", [_match("type", "m.call.invite")],
          ["notify", {"set_tweak": "sound", "value": "ring"}]),
    _rule(
        ".m.rule.encrypted_room_one_to_one",
        [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted")],
        ["notify", _SOUND],
    ),
    _rule(
        ".m.rule.room_one_to_one",
        [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message")],
        ["notify", _SOUND],
    ),
    _rule(".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
]

DEFAULT_RULES: dict[str, list[dict[str, Any]]] = {
    "override": _OVERRIDE,
    "content": _CONTENT,
    "room": [],
    "sender": [],
    "underride": _UNDERRIDE,
}
DEFAULT_RULE_KIND = {r["rule_id"]: kind for kind, rules in DEFAULT_RULES.items() for r in rules}


def _substitute(value: Any, user_id: str, localpart: str) -> Any:
    if value == USER_ID:
        return user_id
    if value == LOCALPART:
        return localpart
    if isinstance(value, list):
        return [_substitute(v, user_id, localpart) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, user_id, localpart) for k, v in value.items()}
    return value


def localpart_of(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]


def default_ruleset(user_id: str) -> dict[str, list[dict[str, Any]]]:
    """The server-default rules for `user_id` (placeholders filled in)."""
    return _substitute(DEFAULT_RULES, user_id, localpart_of(user_id))


def empty_stored() -> dict[str, Any]:
    return {"rules": {k: [] for k in KINDS}, "defaults": {}}


def normalise_stored(stored: dict[str, Any] | None) -> dict[str, Any]:
    """A deep copy of the stored document with every kind present (safe to edit)."""
    out = empty_stored()
    if stored:
        for kind in KINDS:
            out["rules"][kind] = copy.deepcopy(stored.get("rules", {}).get(kind, []))
        out["defaults"] = copy.deepcopy(stored.get("defaults", {}))
    return out


def merged_ruleset(
    user_id: str | None, stored: dict[str, Any] | None
) -> dict[str, list[dict[str, Any]]]:
    """Spec "Predefined Rules": server-default rules rank below the user's rules of the same
    kind, except .m.rule.master, which ranks above every other rule. With `user_id=None` the
    user-specific values stay placeholders (USER_ID, LOCALPART) that the evaluator binds per
    user, so one ruleset serves every user who has not changed their rules. The result shares
    unchanged rule objects with DEFAULT_RULES: read it, never mutate it."""
    defaults = default_ruleset(user_id) if user_id is not None else DEFAULT_RULES
    stored = stored or {}
    changes = stored.get("defaults", {})

    def changed(rule: dict[str, Any]) -> dict[str, Any]:
        change = changes.get(rule["rule_id"])
        if not change:
            return rule
        return {**rule, **{k: change[k] for k in ("enabled", "actions") if k in change}}

    out: dict[str, list[dict[str, Any]]] = {}
    own = stored.get("rules", {})
    for kind in KINDS:
        base = [changed(r) for r in defaults[kind]]
        user_rules = [{**r, "default": False} for r in own.get(kind, [])]
        if kind == "override":
            master = [r for r in base if r["rule_id"] == MASTER]
            rest = [r for r in base if r["rule_id"] != MASTER]
            out[kind] = master + user_rules + rest
        else:
            out[kind] = user_rules + base
    return out


def client_ruleset(user_id: str, stored: dict[str, Any] | None) -> dict[str, Any]:
    """The body of GET /pushrules/ and the content of the m.push_rules account data event."""
    return {"global": merged_ruleset(user_id, stored)}
