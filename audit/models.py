"""The audit tables: records (the hash chain), signed checkpoints, and the keys that signed them.

The tables are unmanaged: migration 0001 writes their DDL by hand, together with the triggers
that make them append-only, so no Django tooling (flush, test teardown) ever tries to empty them.
`details` is the canonical JSON text exactly as it was hashed, not a JSONField: what is stored is
what the hash covers, with no database-side normalisation in between.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import models

from audit.actions import AuditCategory, action_label, category_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


def to_micros(ts: datetime) -> int:
    return (ts - EPOCH) // ONE_MICROSECOND


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


class AuditRecord(models.Model):
    seq = models.BigIntegerField("sequence", primary_key=True)
    ts = models.DateTimeField("time")
    actor = models.CharField(max_length=255)
    actor_type = models.CharField("actor type", max_length=16)
    action = models.IntegerField()
    target = models.CharField(max_length=255)
    details = models.TextField()
    request_id = models.CharField("request id", max_length=128)
    source_addr = models.CharField("source address", max_length=64)
    prev_hash = models.CharField("previous hash", max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        managed = False
        db_table = "audit_record"
        ordering = ["-seq"]
        verbose_name = "audit record"
        default_permissions = ("view",)
        permissions = [
            ("export_auditrecord", "Can export signed audit bundles"),
            ("verify_auditrecord", "Can see the chain status and run a verification"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action_label}"

    @property
    def action_label(self) -> str:
        return action_label(self.action)

    @property
    def category(self) -> AuditCategory:
        return category_of(self.action)

    @property
    def details_dict(self) -> dict[str, Any]:
        return json.loads(self.details)

    @property
    def ts_us(self) -> int:
        return to_micros(self.ts)


class PolicyDecisionManager(models.Manager["PolicyDecision"]):
    def get_queryset(self) -> models.QuerySet[PolicyDecision]:
        low, high = AuditCategory.POLICY.action_range
        return super().get_queryset().filter(action__gte=low, action__lt=high)


class PolicyDecision(AuditRecord):
    """The policy-decision slice of the chain, for compliance officers (no separate table)."""

    objects = PolicyDecisionManager()

    class Meta:
        proxy = True
        verbose_name = "policy decision"
        default_permissions = ("view",)


class AuditCheckpoint(models.Model):
    seq = models.BigIntegerField("sequence", primary_key=True)
    head_hash = models.CharField("head hash", max_length=64)
    ts = models.DateTimeField("time")
    server_name = models.CharField(max_length=255)
    key_id = models.CharField("key id", max_length=64)
    signature = models.CharField(max_length=128)

    class Meta:
        managed = False
        db_table = "audit_checkpoint"
        ordering = ["-seq"]
        verbose_name = "signed checkpoint"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"checkpoint at #{self.seq}"

    def signed_json(self) -> dict[str, Any]:
        """The checkpoint as the Matrix-style signed JSON object that was signed."""
        return {
            "head_hash": self.head_hash,
            "seq": self.seq,
            "server_name": self.server_name,
            "ts": to_micros(self.ts),
            "signatures": {self.server_name: {self.key_id: self.signature}},
        }


class AuditKey(models.Model):
    key_id = models.CharField("key id", max_length=64, primary_key=True)
    public_key = models.CharField("public key", max_length=64)
    created = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "audit_key"
        verbose_name = "audit signing key"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return self.key_id
