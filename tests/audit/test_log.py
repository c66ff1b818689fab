"""Appending: same transaction as the action, one record per committed action, none on rollback,
request context, checkpoints and their sink."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.chain_verify import verify_chain
from audit.context import audit_context
from audit.log import AuditUsageError, checkpoint_due, record, record_system
from audit.models import AuditCheckpoint, AuditRecord
from audit.verify_bundle import GENESIS_HASH, hash_of_record
from homeserver.services.startup import record_config_loaded
from tests.audit.conftest import append, head_seq, set_audit_config


def create_group_audited(name: str) -> Group:
    """A stand-in for a service action: write + audit in one transaction."""
    with transaction.atomic():
        group = Group.objects.create(name=name)
        record(AuditAction.ADMIN_OBJECT_ADDED, actor="root", actor_type=ActorType.ADMIN,
               target=f"auth.group:{group.pk}", details={"name": name})
    return group


@pytest.mark.django_db(transaction=True)
def test_a_committed_action_has_exactly_one_record() -> None:
    before = head_seq()
    group = create_group_audited("committed")
    rows = list(AuditRecord.objects.filter(seq__gt=before))
    assert len(rows) == 1
    assert rows[0].target == f"auth.group:{group.pk}"
    assert rows[0].details_dict == {"name": "committed"}


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_action_has_no_record_and_releases_the_chain() -> None:
    before = head_seq()
    with pytest.raises(RuntimeError), transaction.atomic():
        Group.objects.create(name="rolled-back")
        record(AuditAction.ADMIN_OBJECT_ADDED, actor="root", actor_type=ActorType.ADMIN)
        raise RuntimeError("the action failed after auditing")
    assert not Group.objects.filter(name="rolled-back").exists()
    assert head_seq() == before
    create_group_audited("after-rollback")  # the next append is not blocked
    assert head_seq() == before + 1


@pytest.mark.django_db(transaction=True)
def test_record_outside_a_transaction_is_refused() -> None:
    before = head_seq()
    with pytest.raises(AuditUsageError, match=r"inside transaction\.atomic"):
        record(AuditAction.LOGOUT, actor="@bob:example.org")
    assert head_seq() == before


@pytest.mark.django_db
def test_records_chain_and_carry_the_request_context() -> None:
    before = head_seq()
    with audit_context(request_id="req-abc123", source_addr="192.0.2.7"):
        first = record(AuditAction.LOGIN_SUCCEEDED, actor="@bob:example.org",
                       target="@bob:example.org", details={"device_id": "ABC"})
    second = record_system(AuditAction.CONFIG_LOADED, details={"x": 1})
    assert (first.seq, second.seq) == (before + 1, before + 2)
    assert second.prev_hash == first.hash
    stored = AuditRecord.objects.get(seq=first.seq)
    assert (stored.request_id, stored.source_addr) == ("req-abc123", "192.0.2.7")
    assert stored.hash == first.hash
    assert second.actor_type == "system"
    exported = {"seq": stored.seq, "ts": stored.ts_us, "actor": stored.actor,
                "actor_type": stored.actor_type, "action": stored.action,
                "target": stored.target, "details": stored.details_dict,
                "request_id": stored.request_id, "source_addr": stored.source_addr,
                "prev_hash": stored.prev_hash}
    assert hash_of_record(exported) == stored.hash
    if before == 0:
        assert first.prev_hash == GENESIS_HASH


@pytest.mark.django_db
def test_secrets_and_content_are_refused_and_roll_back_nothing_else() -> None:
    before = head_seq()
    with pytest.raises(ValueError, match="never carry"):
        record(AuditAction.LOGIN_FAILED, actor="@eve:example.org",
               details={"password": "hunter2"})
    assert head_seq() == before


@pytest.mark.django_db(transaction=True)
def test_checkpoints_every_n_records_are_signed_stored_and_sunk_after_commit(
        settings: Any, sink: Path) -> None:
    set_audit_config(settings, checkpoint_every_records=4)
    start = head_seq()
    seqs = append(9)
    expected = {s for s in seqs if s % 4 == 0}
    stored = set(AuditCheckpoint.objects.filter(seq__gt=start).values_list("seq", flat=True))
    assert expected <= stored
    sunk = [json.loads(line) for line in sink.read_text().splitlines()]
    assert {cp["seq"] for cp in sunk} == stored
    assert all(cp["signatures"] for cp in sunk)
    # A rolled-back append that would have been checkpointed leaves nothing in the sink.
    while (head_seq() + 1) % 4:
        append(1)
    lines = len(sink.read_text().splitlines())
    with pytest.raises(RuntimeError), transaction.atomic():
        record(AuditAction.LOGOUT, actor="@a:example.org")
        assert AuditCheckpoint.objects.filter(seq=head_seq()).exists()
        raise RuntimeError
    assert len(sink.read_text().splitlines()) == lines
    assert verify_chain().ok


def test_checkpoint_due_by_count_and_by_time(settings: Any) -> None:
    set_audit_config(settings, checkpoint_every_records=100, checkpoint_every_minutes=15)
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert checkpoint_due(1, now, None)  # the first record anchors the chain
    assert checkpoint_due(200, now, now)
    assert not checkpoint_due(201, now, now - timedelta(minutes=14))
    assert checkpoint_due(202, now, now - timedelta(minutes=15))


@pytest.mark.django_db
def test_startup_records_the_config_fingerprint(settings: Any) -> None:
    before = head_seq()
    with transaction.atomic():  # record_config_loaded opens its own (nested here)
        record_config_loaded()
    rec = AuditRecord.objects.get(seq=before + 1)
    assert rec.action == AuditAction.CONFIG_LOADED
    assert rec.actor_type == ActorType.SYSTEM
    assert rec.details_dict["config_sha256"] == settings.PALISADE.fingerprint()
    assert rec.details_dict["compliance_profile"] == settings.PALISADE.compliance_profile
    assert rec.details_dict["server_name"] == settings.PALISADE.server_name


@pytest.mark.django_db
def test_middleware_sets_request_id_and_source_address(client: Any) -> None:
    before = head_seq()
    response = client.post("/admin/login/", {"username": "nobody", "password": "wrong-pass"},
                           HTTP_X_REQUEST_ID="req-0123456789", REMOTE_ADDR="198.51.100.9")
    assert response["X-Request-ID"] == "req-0123456789"
    rec = AuditRecord.objects.get(seq=before + 1)
    assert rec.action == AuditAction.LOGIN_FAILED
    assert (rec.actor, rec.request_id, rec.source_addr) == \
        ("nobody", "req-0123456789", "198.51.100.9")
    assert "wrong-pass" not in rec.details
    generated = client.get("/admin/login/", HTTP_X_REQUEST_ID="bad id!")["X-Request-ID"]
    assert generated != "bad id!" and len(generated) == 32


@pytest.mark.django_db
def test_the_walks_time_shortcut_matches_the_reference_format() -> None:
    """verify's walk lets the database convert times; on awkward strings and times it agrees
    with the exact per-record read, so its slow fallback is never needed."""
    from django.db import connection

    from audit.chain_verify import WALK_SQL, _full_row, verify_chain
    from audit.verify_bundle import record_hash, record_preimage
    from tests.audit.test_format import TRICKY

    start = head_seq()
    for text in TRICKY:
        record(AuditAction.LOGIN_FAILED, actor=text, target=text[::-1],
               details={"text": text, "n": [1, None, True]})
    with connection.cursor() as cursor:
        cursor.execute(WALK_SQL[connection.vendor])
        rows = [r for r in cursor.fetchall() if r[0] > start]
    assert len(rows) == len(TRICKY)
    for row in rows:
        assert row[1] == _full_row(row[0])[1]
        assert record_hash(record_preimage(*row[:10])) == row[10]
    result = verify_chain()
    assert result.ok and result.rechecked == 0
