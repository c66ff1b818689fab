"""Evaluating one event for many users: the part of the ruleset that does not depend on the
user is evaluated once (`prepare`), then each member only checks the few rules that name them
(`evaluate_prepared`). Same answers as push_rules.evaluate (tested), at a fraction of the cost
per member of a big room (bench/bench_push_eval.py). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeserver.protocol.push_rules import (
    RoomContext,
    clean_actions,
    condition_matches,
    rule_conditions,
    rule_matches,
)
from homeserver.protocol.push_rules_defaults import (
    KINDS,
    LEGACY_MENTION_RULES,
    LOCALPART,
    USER_ID,
)

MATCH, DEPENDS = "match", "depends"


def _user_dependent(cond: Any) -> bool:
    if not isinstance(cond, Mapping):
        return False
    value = cond.get("value")
    return (cond.get("kind") == "contains_display_name"
            or cond.get("pattern") in (USER_ID, LOCALPART)
            or (isinstance(value, str) and value == USER_ID))


def prepare(
    ruleset: Mapping[str, list[Mapping[str, Any]]],
    event: Mapping[str, Any],
    ctx: RoomContext,
    cache: dict | None = None,
) -> list[tuple[str, Mapping[str, Any], str]]:
    """Evaluate a ruleset with placeholders (merged_ruleset(None, ...)) as far as it does not
    depend on the user: the rules that can still match, in order, each MATCH (matches whoever
    the user is) or DEPENDS (has conditions naming the user), up to the first MATCH. Checking
    this short list per member is what keeps a big room's send cheap (bench/bench_push_eval.py).
    """
    content = event.get("content")
    has_mentions = isinstance(content, Mapping) and "m.mentions" in content
    out: list[tuple[str, Mapping[str, Any], str]] = []
    for kind in KINDS:
        for rule in ruleset.get(kind, ()):
            if not rule.get("enabled", True):
                continue
            if has_mentions and rule.get("rule_id") in LEGACY_MENTION_RULES:
                continue
            conditions = rule_conditions(kind, rule)
            if conditions is None:
                continue
            outcome: str | None = MATCH
            for cond in conditions:
                if isinstance(cond, Mapping) and cond.get("kind") == "event_match_exact":
                    if event.get(cond["key"]) != cond["value"]:
                        outcome = None
                        break
                elif _user_dependent(cond):
                    outcome = DEPENDS
                elif not condition_matches(cond, event, "", ctx, cache):
                    outcome = None
                    break
            if outcome is not None:
                out.append((kind, rule, outcome))
                if outcome == MATCH:
                    return out
    return out


def evaluate_prepared(
    prepared: list[tuple[str, Mapping[str, Any], str]],
    event: Mapping[str, Any],
    user_id: str,
    ctx: RoomContext,
    cache: dict | None = None,
) -> tuple[str, list[Any]] | None:
    """`evaluate` for one user, given `prepare`'s result for the event (same answer)."""
    for kind, rule, outcome in prepared:
        if outcome == MATCH or rule_matches(kind, rule, event, user_id, ctx, cache):
            return str(rule.get("rule_id")), clean_actions(rule.get("actions"))
    return None
