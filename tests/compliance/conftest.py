"""Compliance tests: the accounts tests' fixtures (test settings, the JSON `api` client), a
`use_profile` fixture that switches the compliance profile (settings + registered policies) and
restores the configured one afterwards, and helpers to count stored events and read the policy
denials a test caused (audit tables are never flushed: always compare with a head taken first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings

from audit.actions import AuditAction
from compliance.profiles import ActiveProfile, activate_profile
from homeserver.config import ComplianceSection
from homeserver.models import Event
from tests.accounts.conftest import (  # noqa: F401 - fixtures are registered by import
    accounts_settings,
    api,
    audit_head,
    audit_since,
    close_thread_connections,
    configure,
    stream_counter_row,
)


@pytest.fixture
def use_profile(settings: Any) -> Iterator[Callable[..., ActiveProfile]]:
    """use_profile("strict", missing_encryption="add"): as if configured, policies included."""
    original = django_settings.PALISADE
    restore = (original.compliance_profile, original.compliance)

    def use(name: str, **overrides: Any) -> ActiveProfile:
        # A fresh [compliance] section: overrides of an earlier call do not linger.
        configure(settings, compliance_profile=name, compliance=ComplianceSection(**overrides))
        return activate_profile(name, settings.PALISADE.compliance)

    yield use
    activate_profile(*restore)


def count_events(room_id: str | None = None) -> int:
    qs = Event.objects.all()
    return (qs.filter(room_id=room_id) if room_id else qs).count()


def denials_since(seq: int) -> list[dict[str, Any]]:
    """The POLICY_DENIED records after `seq`, as {actor, target, **details}."""
    return [{"actor": r.actor, "actor_type": r.actor_type, "target": r.target,
             **r.details_dict}
            for r in audit_since(seq) if r.action == AuditAction.POLICY_DENIED]


def assert_one_denial(seq: int, *, hook: str, rule: str, actor: str, **expected: Any) -> dict:
    """Exactly one audit record since `seq` — a POLICY_DENIED with these fields and no
    content: a refused action leaves nothing else behind."""
    records = audit_since(seq)
    assert [AuditAction(r.action).name for r in records] == ["POLICY_DENIED"], records
    [denial] = denials_since(seq)
    assert denial["hook"] == hook and denial["rule"] == rule and denial["actor"] == actor, denial
    for key, value in expected.items():
        assert denial[key] == value, (key, denial)
    assert denial["errcode"] and denial["reason"] and denial["policy"] == rule.split(".")[0]
    forbidden = {"content", "body", "value", "initial_state", "ciphertext", "formatted_body"}
    assert not forbidden & set(denial), denial
    return denial


acount_events = sync_to_async(count_events)
aaudit_head = sync_to_async(audit_head)
adenials_since = sync_to_async(denials_since)
aassert_one_denial = sync_to_async(assert_one_denial)
