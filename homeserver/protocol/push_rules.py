"""Push rule evaluation: which actions (if any) a user's ruleset gives one event. Pure.

Spec: client-server API "Push Notifications" -> "Push Rules" (kinds and their order, actions,
conditions) and appendices "Glob-style matching" / "Dot-separated property paths".

    actions = evaluate(merged_ruleset(user, stored), event_dict, user, room_context, cache)

`room_context` answers the few questions conditions ask about the room (member count, display
names, power levels); it may load them lazily, so a condition that is never reached costs
nothing. `cache` is a dict shared by every user evaluated for the same event: results of
conditions that do not depend on the user are computed once per event, not once per member.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Protocol

from homeserver.protocol.push_rules_defaults import (
    KINDS,
    LEGACY_MENTION_RULES,
    LOCALPART,
    USER_ID,
    localpart_of,
)

# Spec "Historical Actions": dont_notify and coalesce are ignored (stripped).
HISTORICAL_ACTIONS = frozenset({"dont_notify", "coalesce"})
MAX_SAFE_INT = 2**53 - 1
_MEMBER_COUNT = re.compile(r"(==|<=|>=|<|>)?([0-9]+)")
# Spec "Conditions", event_match on content.body: a word boundary is the start or end of the
# value, or any character not in [A-Z], [a-z], [0-9] or _.
_WORD = "A-Za-z0-9_"


class RoomContext(Protocol):
    member_count: int

    def display_name(self, user_id: str) -> str | None: ...

    def sender_power_level(self) -> int: ...

    def notification_level(self, key: str) -> int: ...


# --- property paths and values --------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def split_path(key: str) -> tuple[str, ...]:
    """Spec appendices "Dot-separated property paths": `\\.` is a literal dot, `\\\\` a literal
    backslash; other escapes stay as they are."""
    parts, cur, i = [], [], 0
    while i < len(key):
        ch = key[i]
        if ch == "\\" and i + 1 < len(key) and key[i + 1] in ".\\":
            cur.append(key[i + 1])
            i += 2
            continue
        if ch == ".":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return tuple(parts)


_MISSING = object()


def lookup(event: Mapping[str, Any], key: str) -> Any:
    """The value at a dot-separated path, or _MISSING."""
    node: Any = event
    for part in split_path(key):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def is_simple_value(value: Any) -> bool:
    """Spec: non-compound canonical JSON values: strings, integers in the safe range, booleans
    and null."""
    if value is None or isinstance(value, str | bool):
        return True
    return isinstance(value, int) and -MAX_SAFE_INT <= value <= MAX_SAFE_INT


def _same(a: Any, b: Any) -> bool:
    """Exact match without casts: true is not 1, "1" is not 1."""
    return type(a) is type(b) and a == b and is_simple_value(a)


# --- glob matching --------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def glob_regex(pattern: str, word_boundary: bool) -> re.Pattern[str]:
    """Spec appendices "Glob-style matching": `*` matches zero or more characters, `?` exactly
    one; matching is case-insensitive."""
    body = "".join(
        ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern
    )
    if word_boundary:
        return re.compile(f"(?<![{_WORD}])(?:{body})(?![{_WORD}])", re.IGNORECASE | re.DOTALL)
    return re.compile(f"(?:{body})", re.IGNORECASE | re.DOTALL)


_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def contains_word(text: str, word: str) -> bool:
    """Case-insensitive: `word` occurs in `text` between word boundaries. The regex-free path
    for literal patterns (user names, display names), which differ for every member of a room
    and would otherwise each compile a regex per event."""
    text, word = text.lower(), word.lower()
    if not word:
        return False
    start = text.find(word)
    while start != -1:
        end = start + len(word)
        if (start == 0 or text[start - 1] not in _WORD_CHARS) and (
            end == len(text) or text[end] not in _WORD_CHARS
        ):
            return True
        start = text.find(word, start + 1)
    return False


def glob_matches(pattern: str, value: str, *, word_boundary: bool = False) -> bool:
    if word_boundary and "*" not in pattern and "?" not in pattern:
        return contains_word(value, pattern)
    rx = glob_regex(pattern, word_boundary)
    return bool(rx.search(value) if word_boundary else rx.fullmatch(value))


# --- conditions -----------------------------------------------------------------------------


def _event_match(cond: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    key, pattern = cond.get("key"), cond.get("pattern")
    if not isinstance(key, str) or not isinstance(pattern, str):
        return False
    value = lookup(event, key)
    if not isinstance(value, str):
        return False  # absent or not a string: no match, even for "*"
    # Spec: for content.body the pattern matches a substring between word boundaries.
    return glob_matches(pattern, value, word_boundary=key == "content.body")


def _property_is(cond: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    key = cond.get("key")
    if not isinstance(key, str) or "value" not in cond:
        return False
    value = lookup(event, key)
    return value is not _MISSING and _same(value, cond["value"])


def _property_contains(cond: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    key = cond.get("key")
    if not isinstance(key, str) or "value" not in cond:
        return False
    values = lookup(event, key)
    if not isinstance(values, list):
        return False
    wanted = cond["value"]
    return any(_same(v, wanted) for v in values)


def parse_member_count(spec: Any) -> tuple[str, int] | None:
    """Spec room_member_count: `is` is a decimal integer, optionally prefixed by ==, <, >, >=
    or <= (default ==)."""
    m = _MEMBER_COUNT.fullmatch(spec) if isinstance(spec, str) else None
    return (m.group(1) or "==", int(m.group(2))) if m else None


def member_count_matches(spec: Any, count: int) -> bool:
    """Anything that is not a valid `is` never matches."""
    parsed = parse_member_count(spec)
    if parsed is None:
        return False
    op, n = parsed
    return {
        "==": count == n, "<": count < n, ">": count > n, "<=": count <= n, ">=": count >= n,
    }[op]


def _contains_display_name(event: Mapping[str, Any], user_id: str, ctx: RoomContext) -> bool:
    body = lookup(event, "content.body")
    if not isinstance(body, str) or not body:
        return False
    name = ctx.display_name(user_id)
    return bool(name) and contains_word(body, name)  # type: ignore[arg-type]


def _condition_key(cond: Mapping[str, Any]) -> tuple | None:
    """Cache key for a condition whose result is the same for every user (all of them except
    contains_display_name); None when it must not be cached."""
    kind = cond.get("kind")
    if kind == "contains_display_name":
        return None
    try:
        return (kind, cond.get("key"), cond.get("pattern"), cond.get("is"),
                type(cond.get("value")).__name__, cond.get("value"))
    except TypeError:
        return None


def condition_matches(
    cond: Any, event: Mapping[str, Any], user_id: str, ctx: RoomContext,
    cache: dict | None = None,
) -> bool:
    """Spec "Conditions". Unrecognised conditions never match."""
    if not isinstance(cond, Mapping):
        return False
    ckey = _condition_key(cond) if cache is not None else None
    if ckey is not None:
        try:
            hit = cache.get(ckey)  # type: ignore[union-attr]
        except TypeError:  # an unhashable value in a user-supplied condition
            ckey, hit = None, None
        if hit is not None:
            return hit
    kind = cond.get("kind")
    if kind == "event_match":
        result = _event_match(cond, event)
    elif kind == "event_property_is":
        result = _property_is(cond, event)
    elif kind == "event_property_contains":
        result = _property_contains(cond, event)
    elif kind == "contains_display_name":
        result = _contains_display_name(event, user_id, ctx)
    elif kind == "room_member_count":
        result = member_count_matches(cond.get("is"), ctx.member_count)
    elif kind == "sender_notification_permission":
        key = cond.get("key")
        result = isinstance(key, str) and ctx.sender_power_level() >= ctx.notification_level(key)
    else:
        result = False
    if ckey is not None:
        cache[ckey] = result  # type: ignore[index]
    return result


# --- rules ----------------------------------------------------------------------------------


def rule_conditions(kind: str, rule: Mapping[str, Any]) -> list[Any] | None:
    """The conditions a rule stands for: content rules match content.body against their
    pattern, room rules the room_id, sender rules the sender (spec "Push Rules"). None when the
    rule cannot match (a content rule without a pattern)."""
    if kind in ("override", "underride"):
        conditions = rule.get("conditions", [])
        return conditions if isinstance(conditions, list) else None
    if kind == "content":
        pattern = rule.get("pattern")
        if not isinstance(pattern, str):
            return None
        return [{"kind": "event_match", "key": "content.body", "pattern": pattern}]
    if kind == "room":
        return [{"kind": "event_match_exact", "key": "room_id", "value": rule.get("rule_id")}]
    if kind == "sender":
        return [{"kind": "event_match_exact", "key": "sender", "value": rule.get("rule_id")}]
    return None


def _bind(cond: Any, user_id: str) -> Any:
    """Fill the placeholders of a server-default rule (see push_rules_defaults) for a user."""
    if not isinstance(cond, Mapping):
        return cond
    pattern, value = cond.get("pattern"), cond.get("value")
    if pattern not in (USER_ID, LOCALPART) and not (isinstance(value, str) and value == USER_ID):
        return cond
    bound = dict(cond)
    if pattern == USER_ID:
        bound["pattern"] = user_id
    elif pattern == LOCALPART:
        bound["pattern"] = localpart_of(user_id)
    if value == USER_ID:
        bound["value"] = user_id
    return bound


def rule_matches(kind: str, rule: Mapping[str, Any], event: Mapping[str, Any], user_id: str,
                  ctx: RoomContext, cache: dict | None) -> bool:
    conditions = rule_conditions(kind, rule)
    if conditions is None:
        return False
    for cond in conditions:
        if isinstance(cond, Mapping) and cond.get("kind") == "event_match_exact":
            if event.get(cond["key"]) != cond["value"]:  # room and sender rules: the id itself
                return False
        elif not condition_matches(_bind(cond, user_id), event, user_id, ctx, cache):
            return False
    return True


def clean_actions(actions: Any) -> list[Any]:
    if not isinstance(actions, list):
        return []
    return [a for a in actions if not (isinstance(a, str) and a in HISTORICAL_ACTIONS)]


def evaluate(
    ruleset: Mapping[str, list[Mapping[str, Any]]],
    event: Mapping[str, Any],
    user_id: str,
    ctx: RoomContext,
    cache: dict | None = None,
) -> tuple[str, list[Any]] | None:
    """(rule_id, actions) of the highest-priority enabled rule matching `event`, or None when no
    rule matches (then the user is not notified). Rules are checked kind by kind in the spec's
    order (override, content, room, sender, underride), each kind in list order."""
    content = event.get("content")
    has_mentions = isinstance(content, Mapping) and "m.mentions" in content
    for kind in KINDS:
        for rule in ruleset.get(kind, ()):
            if not rule.get("enabled", True):
                continue
            if has_mentions and rule.get("rule_id") in LEGACY_MENTION_RULES:
                continue
            if rule_matches(kind, rule, event, user_id, ctx, cache):
                return str(rule.get("rule_id")), clean_actions(rule.get("actions"))
    return None


def tweaks(actions: list[Any]) -> dict[str, Any]:
    """Spec "Actions" set_tweak: `highlight` without a value means true."""
    out: dict[str, Any] = {}
    for a in actions:
        if isinstance(a, Mapping) and isinstance(a.get("set_tweak"), str):
            name = a["set_tweak"]
            out[name] = a.get("value", True) if name == "highlight" else a.get("value")
    return out


def notifies(actions: list[Any]) -> bool:
    return "notify" in actions


def highlights(actions: list[Any]) -> bool:
    return bool(tweaks(actions).get("highlight", False))
