"""Validating and applying push rule changes to a user's stored rules (see push_rules_defaults
for the stored form). Pure: every function takes the stored document and returns a new one.

Spec: client-server API "Push Rules: API" (PUT/DELETE /pushrules/global/{kind}/{ruleId},
.../enabled, .../actions, the `before`/`after` query parameters) and the push_rule /
push_condition schemas.

Errors: a body of the wrong shape (missing or mistyped `actions`, `conditions`, `pattern`,
`enabled`) is 400 M_BAD_JSON; well-formed but invalid values (rule ids, unknown actions,
condition parameters, before/after targets) are 400 M_INVALID_PARAM; a rule that does not exist
is 404 M_NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, RoomID, UserID
from homeserver.protocol.push_rules import HISTORICAL_ACTIONS, is_simple_value, parse_member_count
from homeserver.protocol.push_rules_defaults import (
    DEFAULT_RULE_KIND,
    KINDS,
    merged_ruleset,
    normalise_stored,
)

SCOPES = ("global",)
MAX_RULE_ID_BYTES = 255
MAX_USER_RULES = 500  # per user, all kinds together: a bound on what evaluation may iterate
KNOWN_ACTIONS = frozenset({"notify"}) | HISTORICAL_ACTIONS


def _invalid(msg: str) -> MatrixError:
    return MatrixError(400, Errcode.INVALID_PARAM, msg)


def _bad_json(msg: str) -> MatrixError:
    return MatrixError(400, Errcode.BAD_JSON, msg)


def not_found() -> MatrixError:
    return MatrixError(404, Errcode.NOT_FOUND, "The push rule was not found.")


def check_path(scope: str, kind: str) -> None:
    if scope not in SCOPES:
        raise _invalid(f"Unknown push rule scope {scope!r}; only 'global' exists")
    if kind not in KINDS:
        raise _invalid(f"Unknown push rule kind {kind!r}; expected one of {', '.join(KINDS)}")


def check_new_rule_id(kind: str, rule_id: str) -> None:
    """Spec PUT /pushrules: ids starting with "." are reserved for server-default rules, and
    slashes and backslashes are not allowed. Room and sender rules are named by their id."""
    if not rule_id or len(rule_id.encode()) > MAX_RULE_ID_BYTES:
        raise _invalid("rule_id must be 1-255 bytes")
    if rule_id.startswith("."):
        raise _invalid("rule_ids starting with '.' are reserved for server-default rules")
    if "/" in rule_id or "\\" in rule_id:
        raise _invalid("rule_id may not contain '/' or '\\'")
    try:
        if kind == "room":
            RoomID.parse(rule_id)
        elif kind == "sender":
            UserID.parse_historical(rule_id)
    except InvalidIdentifier:
        raise _invalid(f"the rule_id of a {kind} rule must be a {kind} ID") from None


def parse_actions(actions: Any) -> list[Any]:
    """Spec "Actions": "notify", or {"set_tweak": name, "value"?: ...}. Historical actions
    (dont_notify, coalesce) are accepted and stripped."""
    if not isinstance(actions, list):
        raise _bad_json("actions must be a list")
    out: list[Any] = []
    for action in actions:
        if isinstance(action, str):
            if action not in KNOWN_ACTIONS:
                raise _invalid(f"Unknown push rule action {action!r}")
            if action not in HISTORICAL_ACTIONS:
                out.append(action)
        elif isinstance(action, Mapping):
            if not isinstance(action.get("set_tweak"), str) or not action["set_tweak"]:
                raise _invalid("An action object must have a string set_tweak")
            out.append(dict(action))
        else:
            raise _invalid("Actions are strings or objects")
    return out


def _parse_condition(cond: Any) -> dict[str, Any]:
    if not isinstance(cond, Mapping) or not isinstance(cond.get("kind"), str):
        raise _bad_json("Each condition must be an object with a string 'kind'")
    kind = cond["kind"]
    if kind in ("event_match", "event_property_is", "event_property_contains",
                "sender_notification_permission") and not isinstance(cond.get("key"), str):
        raise _invalid(f"A {kind} condition needs a string 'key'")
    if kind == "event_match" and not isinstance(cond.get("pattern"), str):
        raise _invalid("An event_match condition needs a string 'pattern'")
    if kind in ("event_property_is", "event_property_contains") and (
        "value" not in cond or not is_simple_value(cond["value"])
    ):
        raise _invalid(f"A {kind} condition needs a string, integer, boolean or null 'value'")
    if kind == "room_member_count" and parse_member_count(cond.get("is")) is None:
        raise _invalid("A room_member_count condition needs 'is' like '2', '<10' or '>=3'")
    # Unrecognised kinds are stored as given: spec "Conditions": they never match.
    return dict(cond)


def parse_rule_body(kind: str, rule_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form of a rule from the PUT body (enabled by default, spec "When creating push
    rules, they MUST be enabled by default")."""
    check_new_rule_id(kind, rule_id)
    if "actions" not in body:
        raise _bad_json("Missing 'actions'")
    rule: dict[str, Any] = {"rule_id": rule_id, "enabled": True,
                            "actions": parse_actions(body["actions"])}
    if kind in ("override", "underride"):
        conditions = body.get("conditions", [])
        if not isinstance(conditions, list):
            raise _bad_json("conditions must be a list")
        rule["conditions"] = [_parse_condition(c) for c in conditions]
    elif kind == "content":
        pattern = body.get("pattern")
        if not isinstance(pattern, str):
            raise _bad_json("A content rule needs a string 'pattern'")
        if not pattern:
            raise _invalid("pattern must not be empty")
        rule["pattern"] = pattern
    return rule


def _index(rules: list[dict[str, Any]], rule_id: str) -> int | None:
    for i, r in enumerate(rules):
        if r.get("rule_id") == rule_id:
            return i
    return None


def put_rule(stored: Mapping[str, Any] | None, kind: str, rule: dict[str, Any],
             before: str | None, after: str | None) -> dict[str, Any]:
    """Spec PUT /pushrules/global/{kind}/{ruleId}: update in place (keeping its enabled state)
    or insert as the most important user rule; `before`/`after` name a user rule of the same
    kind (relative to a server-default rule is not possible); with both, `before` wins."""
    out = normalise_stored(stored)
    rules = out["rules"][kind]
    existing = _index(rules, rule["rule_id"])
    for anchor in (before, after):
        if anchor is not None:
            if anchor.startswith(".") or anchor in DEFAULT_RULE_KIND:
                raise _invalid("Rules cannot be placed relative to a server-default rule")
            if anchor == rule["rule_id"] or _index(rules, anchor) is None:
                raise _invalid(f"before/after rule not found: {anchor}")
    if existing is not None:
        rule = {**rule, "enabled": rules[existing].get("enabled", True)}
        if before is None and after is None:
            rules[existing] = rule
            return out
        rules.pop(existing)
    elif sum(len(v) for v in out["rules"].values()) >= MAX_USER_RULES:
        raise MatrixError(400, Errcode.LIMIT_EXCEEDED,
                          f"At most {MAX_USER_RULES} push rules per user")
    if before is not None:
        rules.insert(_index(rules, before), rule)  # type: ignore[arg-type]
    elif after is not None:
        rules.insert(_index(rules, after) + 1, rule)  # type: ignore[operator]
    else:
        rules.insert(0, rule)
    return out


def delete_rule(stored: Mapping[str, Any] | None, kind: str, rule_id: str) -> dict[str, Any]:
    out = normalise_stored(stored)
    if DEFAULT_RULE_KIND.get(rule_id) == kind:
        raise _invalid("Server-default rules cannot be deleted; disable them instead")
    i = _index(out["rules"][kind], rule_id)
    if i is None:
        raise not_found()
    out["rules"][kind].pop(i)
    return out


def _change(stored: Mapping[str, Any] | None, kind: str, rule_id: str, field: str,
            value: Any) -> dict[str, Any]:
    out = normalise_stored(stored)
    if DEFAULT_RULE_KIND.get(rule_id) == kind:
        out["defaults"].setdefault(rule_id, {})[field] = value
        return out
    i = _index(out["rules"][kind], rule_id)
    if i is None:
        raise not_found()
    out["rules"][kind][i][field] = value
    return out


def set_enabled(stored: Mapping[str, Any] | None, kind: str, rule_id: str,
                body: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("enabled"), bool):
        raise _bad_json("'enabled' must be true or false")
    return _change(stored, kind, rule_id, "enabled", body["enabled"])


def set_actions(stored: Mapping[str, Any] | None, kind: str, rule_id: str,
                body: Mapping[str, Any]) -> dict[str, Any]:
    if "actions" not in body:
        raise _bad_json("Missing 'actions'")
    return _change(stored, kind, rule_id, "actions", parse_actions(body["actions"]))


def get_rule(user_id: str, stored: Mapping[str, Any] | None, kind: str,
             rule_id: str) -> dict[str, Any]:
    for rule in merged_ruleset(user_id, dict(stored) if stored else None)[kind]:
        if rule["rule_id"] == rule_id:
            return rule
    raise not_found()
