"""Push rules API. Spec: client-server API "Push Rules: API" and "Push Rules: Events": after a
change the whole ruleset goes to the user's clients as the m.push_rules account data event.

Edits lock the user's stored rules for the transaction, so concurrent edits queue; a refused
edit (bad body, unknown rule) rolls back and leaves nothing changed.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol import push_rules_edit as edit
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.push_rules_defaults import client_ruleset
from homeserver.storage import account_data as data_store
from homeserver.storage import push as push_store
from homeserver.storage.stream import next_stream_positions

ATTRS = ("enabled", "actions")


def get_ruleset(user_id: str) -> dict[str, Any]:
    """GET /pushrules/ (GET /pushrules/global/ is its "global" member)."""
    return client_ruleset(user_id, push_store.get_ruleset(user_id))


def get_rule(user_id: str, scope: str, kind: str, rule_id: str) -> dict[str, Any]:
    edit.check_path(scope, kind)
    return edit.get_rule(user_id, push_store.get_ruleset(user_id), kind, rule_id)


def get_rule_attr(user_id: str, scope: str, kind: str, rule_id: str, attr: str
                  ) -> dict[str, Any]:
    rule = get_rule(user_id, scope, kind, rule_id)
    return {attr: rule[attr]}


def _save(user_id: str, stored: dict[str, Any]) -> None:
    push_store.put_ruleset(user_id, stored)
    position = next_stream_positions(1)
    data_store.put_account_data(user_id, "", "m.push_rules", client_ruleset(user_id, stored),
                                position)
    notify_after_commit(position, user_ids=[user_id])


def do_put_rule(user_id: str, scope: str, kind: str, rule_id: str, body: dict[str, Any],
                before: str | None, after: str | None) -> None:
    edit.check_path(scope, kind)
    rule = edit.parse_rule_body(kind, rule_id, body)
    with transaction.atomic():
        stored = edit.put_rule(push_store.lock_ruleset(user_id), kind, rule, before, after)
        _save(user_id, stored)


def do_delete_rule(user_id: str, scope: str, kind: str, rule_id: str) -> None:
    edit.check_path(scope, kind)
    with transaction.atomic():
        _save(user_id, edit.delete_rule(push_store.lock_ruleset(user_id), kind, rule_id))


def do_set_rule_attr(user_id: str, scope: str, kind: str, rule_id: str, attr: str,
                     body: dict[str, Any]) -> None:
    edit.check_path(scope, kind)
    if attr not in ATTRS:
        raise MatrixError(400, Errcode.UNRECOGNIZED, f"Unknown push rule attribute {attr!r}")
    change = edit.set_enabled if attr == "enabled" else edit.set_actions
    with transaction.atomic():
        _save(user_id, change(push_store.lock_ruleset(user_id), kind, rule_id, body))
