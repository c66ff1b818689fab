"""Tampering with raw SQL (triggers dropped inside the test's transaction, so only this test
database is affected and the triggers come back on rollback) is caught by `audit verify`,
which names the first broken sequence number and the kind of break."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import AuditCheckpoint
from audit.verify_bundle import record_hash, record_preimage
from tests.audit.conftest import append, is_postgres, set_audit_config

pytestmark = pytest.mark.django_db

TRIGGERS = {
    "postgresql": ["DROP TRIGGER {t}_append_only ON {t}"],
    "sqlite": ["DROP TRIGGER {t}_no_update", "DROP TRIGGER {t}_no_delete"],
}


def sql(statement: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def drop_triggers() -> None:
    for table in ("audit_record", "audit_checkpoint"):
        for statement in TRIGGERS[connection.vendor]:
            sql(statement.format(t=table))


def verify(*args: str) -> tuple[bool, str]:
    out = io.StringIO()
    try:
        call_command("audit", "verify", "--no-record", *args, stdout=out)
    except CommandError:
        return False, out.getvalue()
    return True, out.getvalue()


def broken_at(output: str) -> tuple[int, str]:
    m = re.search(r"BROKEN at seq (\d+): ([a-z ]+):", output)
    assert m, output
    return int(m.group(1)), m.group(2)


@pytest.fixture
def chain(settings: Any) -> list[int]:
    """Twelve fresh records with a checkpoint every 5; the chain verifies before tampering."""
    set_audit_config(settings, checkpoint_every_records=5)
    seqs = append(12, details={"note": "genuine"})
    ok, out = verify()
    assert ok, out
    drop_triggers()
    return seqs


def last_checkpoint_in(seqs: list[int]) -> int:
    return max(s for s in seqs if s % 5 == 0 and s - 2 > seqs[0])


def rehash_from(seq: int, *, only_this_one: bool = False) -> None:
    """What a careful attacker does after an edit: recompute hashes (and links) onward."""
    ts = "(EXTRACT(EPOCH FROM ts) * 1000000)::bigint" if is_postgres() else "ts || ''"
    rows = sql(f"SELECT seq, {ts}, actor, actor_type, action, target, details, request_id, "
               "source_addr, prev_hash FROM audit_record WHERE seq >= %s ORDER BY seq", [seq])
    prev = rows[0][9]
    for row in rows[:1] if only_this_one else rows:
        us = row[1] if isinstance(row[1], int) else \
            (datetime.fromisoformat(row[1]) - datetime(1970, 1, 1)) // timedelta(microseconds=1)
        digest = record_hash(record_preimage(row[0], us, *row[2:9], prev))
        sql("UPDATE audit_record SET prev_hash = %s, hash = %s WHERE seq = %s",
            [prev, digest, row[0]])
        prev = digest


def test_untouched_chain_verifies(settings: Any) -> None:
    set_audit_config(settings, checkpoint_every_records=5)
    append(6)
    ok, out = verify()
    assert ok and out.startswith("OK:"), out


def test_edited_record(chain: list[int]) -> None:
    sql("UPDATE audit_record SET details = %s WHERE seq = %s", ['{"i":99}', chain[3]])
    assert broken_at(verify()[1]) == (chain[3], "edited")


def test_edited_actor_keeps_nothing_hidden(chain: list[int]) -> None:
    sql("UPDATE audit_record SET actor = 'someone-else' WHERE seq = %s", [chain[7]])
    assert broken_at(verify()[1]) == (chain[7], "edited")


def test_deleted_record(chain: list[int]) -> None:
    sql("DELETE FROM audit_record WHERE seq = %s", [chain[5]])
    assert broken_at(verify()[1]) == (chain[5], "deleted")


def test_reordered_records(chain: list[int]) -> None:
    a, b, parked = chain[2], chain[3], 10**12
    sql("UPDATE audit_record SET seq = %s WHERE seq = %s", [parked, a])
    sql("UPDATE audit_record SET seq = %s WHERE seq = %s", [a, b])
    sql("UPDATE audit_record SET seq = %s WHERE seq = %s", [b, parked])
    assert broken_at(verify()[1]) == (a, "reordered")


def test_truncated_tail_is_caught_by_the_stored_checkpoint(chain: list[int]) -> None:
    cp = last_checkpoint_in(chain)
    sql("DELETE FROM audit_record WHERE seq >= %s", [cp - 1])
    assert broken_at(verify()[1]) == (cp - 1, "truncated")


def test_truncated_tail_and_checkpoints_are_caught_by_a_held_checkpoint(
        chain: list[int], tmp_path: Path) -> None:
    cp = last_checkpoint_in(chain)
    held = tmp_path / "held.jsonl"  # what the auditor copied from the external sink
    held.write_text(json.dumps(AuditCheckpoint.objects.get(seq=cp).signed_json()) + "\n")
    sql("DELETE FROM audit_record WHERE seq >= %s", [cp - 1])
    sql("DELETE FROM audit_checkpoint WHERE seq >= %s", [cp - 1])
    assert verify()[0]  # the database alone can no longer tell...
    assert broken_at(verify("--checkpoints", str(held))[1]) == (cp - 1, "truncated")


def test_rewritten_tail_with_recomputed_hashes_is_caught_by_the_checkpoint(
        chain: list[int]) -> None:
    cp = last_checkpoint_in(chain)
    sql("UPDATE audit_record SET actor = 'someone-else' WHERE seq = %s", [cp - 1])
    rehash_from(cp - 1)
    assert broken_at(verify()[1]) == (cp, "rewritten")


def test_one_record_rewritten_with_its_hash_breaks_the_next_link(chain: list[int]) -> None:
    sql("UPDATE audit_record SET actor = 'someone-else' WHERE seq = %s", [chain[1]])
    rehash_from(chain[1], only_this_one=True)
    assert broken_at(verify()[1]) == (chain[1], "rewritten")


def test_forged_checkpoint_signature(chain: list[int]) -> None:
    cp = last_checkpoint_in(chain)
    sig = AuditCheckpoint.objects.get(seq=cp).signature
    forged = ("B" if sig[0] != "B" else "C") + sig[1:]
    sql("UPDATE audit_checkpoint SET signature = %s WHERE seq = %s", [forged, cp])
    assert broken_at(verify()[1]) == (cp, "bad signature")


def test_rewritten_whole_table_is_caught_against_the_last_held_checkpoint(
        chain: list[int], tmp_path: Path) -> None:
    cp = last_checkpoint_in(chain)
    held = tmp_path / "held.jsonl"
    held.write_text(json.dumps(AuditCheckpoint.objects.get(seq=cp).signed_json()) + "\n")
    sql("DELETE FROM audit_checkpoint")
    sql("UPDATE audit_record SET target = 'rewritten' WHERE seq >= %s", [chain[0]])
    rehash_from(1)
    assert verify()[0]  # internally consistent again...
    assert broken_at(verify("--checkpoints", str(held))[1]) == (cp, "rewritten")
