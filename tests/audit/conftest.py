"""Audit tests: each test gets its own checkpoint sink file; helpers to tweak [audit] config.

The audit tables are unmanaged (never flushed), so records committed by transactional tests
stay in the worker's test database: tests assert on the records they add (by sequence number
or delta), never on absolute counts. All tests share the default audit key, so every stored
checkpoint in a test database verifies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from audit.models import AuditRecord


def set_audit_config(settings: Any, **changes: Any) -> None:
    palisade = settings.PALISADE
    settings.PALISADE = palisade.model_copy(
        update={"audit": palisade.audit.model_copy(update=changes)}
    )


@pytest.fixture(autouse=True)
def sink(tmp_path: Path, settings: Any) -> Path:
    path = tmp_path / "checkpoints.jsonl"
    set_audit_config(settings, sink_path=str(path))
    return path


def head_seq() -> int:
    last = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first()
    return last or 0


def append(n: int, *, action: AuditAction = AuditAction.LOGIN_SUCCEEDED,
           actor: str = "@alice:example.org", **kw: Any) -> list[int]:
    seqs = []
    for i in range(n):
        with transaction.atomic():
            seqs.append(record(action, actor=actor, actor_type=kw.get("actor_type",
                               ActorType.USER), target=kw.get("target", ""),
                               details={"i": i, **kw.get("details", {})}).seq)
    return seqs


def is_postgres() -> bool:
    return connection.vendor == "postgresql"
