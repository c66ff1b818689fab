"""The chain format: canonical bytes, hashes, actions and categories (no database)."""

from __future__ import annotations

import pytest

from audit.actions import ActorType, AuditAction, AuditCategory, action_label, category_of
from audit.log import check_details
from audit.verify_bundle import (
    GENESIS_HASH,
    canonical_json,
    hash_of_record,
    record_hash,
    record_preimage,
)

TRICKY = ["", "plain", 'quote " and \\ backslash', "ctrl \x00\x01\x1f\t\n", "é ü 漢字 😀",
          "line\u2028sep\u2029", "</script>"]


@pytest.mark.parametrize("text", TRICKY)
def test_fast_preimage_is_canonical_json_of_the_record(text: str) -> None:
    rec = {"seq": 42, "ts": 1_700_000_000_123_456, "actor": text, "actor_type": "user",
           "action": 1001, "target": text, "details": {"b": [1, None, True, text], "a": {"z": 1}},
           "request_id": text, "source_addr": "::1", "prev_hash": GENESIS_HASH}
    fast = record_preimage(rec["seq"], rec["ts"], rec["actor"], rec["actor_type"],
                           rec["action"], rec["target"],
                           canonical_json(rec["details"]).decode(), rec["request_id"],
                           rec["source_addr"], rec["prev_hash"])
    assert fast == canonical_json(rec)
    assert hash_of_record(rec) == record_hash(fast)


def test_canonical_json_sorts_keys_and_keeps_utf8() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_preimage_refuses_non_integer_numbers() -> None:
    with pytest.raises((ValueError, TypeError)):
        record_preimage("1", 0, "a", "user", 1001, "", "{}", "", "", GENESIS_HASH)  # type: ignore[arg-type]


def test_action_numbers_and_categories() -> None:
    assert AuditAction.USER_CREATED == 1001
    assert AuditAction.ROOM_CREATED == 2001
    assert AuditAction.MEMBERSHIP_CHANGED == 3001
    assert AuditAction.POLICY_DENIED == 4001
    assert AuditAction.CONFIG_LOADED == 8001
    for action in AuditAction:
        low, high = action.category.action_range
        assert low <= action < high
    assert AuditAction.POLICY_REWRITTEN.category is AuditCategory.POLICY
    assert AuditAction.ADMIN_OBJECT_CHANGED.category == "admin"
    assert category_of(5123) is AuditCategory.FEDERATION  # a number this build has no name for
    assert action_label(5123) == "Action 5123"
    assert ActorType.REMOTE_SERVER == "remote_server"


@pytest.mark.parametrize("details", [
    {"password": "hunter2"}, {"nested": {"access_token": "syt_x"}}, {"events": [{"content": {}}]},
    {"Authorization": "Bearer x"},
])
def test_details_never_carry_secrets_or_content(details: dict) -> None:
    with pytest.raises(ValueError, match="never carry"):
        check_details(details)


def test_redacted_secret_fields_are_allowed() -> None:
    check_details({"after": {"password": "[redacted]"}, "reason": "ok",
                   "changes": {"password": ["[redacted]", "[redacted]"], "token": [None, ""]}})
