"""`audit verify` with worker processes reports exactly what the serial walk reports.

1. Every tampering test of test_tamper.py runs again (imported below) with the chain split into
   small ranges. The ranges are checked in this process over the test's own connection (worker
   processes could not see the test's uncommitted transaction), so what is exercised is the
   range checks, the boundary links and the serial re-walk from the first range not clean.
2. Real worker processes walk a committed chain in a database of their own, before and after
   tampering, and agree with the serial walk word for word.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from audit import chain_verify
from audit.verify_ranges import RangeJob, RangeResult, check_range
from tests.audit.test_concurrency import own_database  # noqa: F401 (fixture)
from tests.audit.test_tamper import *  # noqa: F403 (the tamper tests, run in ranges here)
from tests.audit.test_tamper import chain  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]


def _inline(jobs: list[RangeJob], workers: int) -> list[RangeResult]:
    results = []
    for job in jobs:
        with connection.cursor() as cursor:
            cursor.execute(job.sql)
            results.append(check_range(job, cursor.fetchall()))
    return results


@pytest.fixture(autouse=True, params=[1, 3], ids=["ranges-of-1", "ranges-of-3"])
def in_ranges(request: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain_verify, "_can_walk_in_processes", lambda: True)
    monkeypatch.setattr(chain_verify, "run_ranges", _inline)
    monkeypatch.setattr(chain_verify, "PARALLEL_MIN_RECORDS", 1)
    monkeypatch.setattr(chain_verify, "MIN_RANGE_RECORDS", request.param)
    monkeypatch.setattr(chain_verify, "RANGES_PER_WORKER", 1000)
    monkeypatch.setattr("audit.management.commands.audit.default_workers", lambda: 4)


def test_ranges_are_really_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.audit.conftest import append

    seen: list[int] = []

    def counting(jobs: list[RangeJob], workers: int) -> list[RangeResult]:
        seen.append(len(jobs))
        return _inline(jobs, workers)

    append(8)
    monkeypatch.setattr(chain_verify, "run_ranges", counting)
    result = chain_verify.verify_chain(workers=4)
    assert result.ok and seen and seen[0] > 1
    assert result.head_hash == chain_verify.verify_chain(workers=1).head_hash


def _run(env: dict[str, str], code: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1]


VERIFY = ("from audit import chain_verify as c; c.MIN_RANGE_RECORDS = 7; "
          "r = c.verify_chain(workers={w}, parallel_min_records=1); "
          "print(r.summary().split(' (')[0] if r.ok else r.summary())")


@pytest.mark.parametrize("in_ranges", [1], indirect=True)
def test_worker_processes_agree_with_the_serial_walk(own_database: str,  # noqa: F811
                                                     tmp_path: Path) -> None:
    env = {**os.environ, "PALISADE_DATABASE_URL": own_database,
           "PALISADE__AUDIT__SINK_PATH": str(tmp_path / "sink.jsonl"),
           "PALISADE__AUDIT__CHECKPOINT_EVERY_RECORDS": "10",
           "DJANGO_SETTINGS_MODULE": "homeserver.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--skip-checks", "-v0"], env=env,
                   cwd=ROOT, check=True)
    _run(env, "from django.db import transaction; from audit.log import record; "
              "from audit.actions import AuditAction as A\n"
              "for i in range(60):\n"
              "    with transaction.atomic(): record(A.LOGIN_SUCCEEDED, actor='@a:x', "
              "details={'i': i})\nprint('ok')")
    serial, parallel = _run(env, VERIFY.format(w=1)), _run(env, VERIFY.format(w=3))
    assert serial.startswith("OK: 60 records") and parallel == serial

    drop = ("DROP TRIGGER audit_record_append_only ON audit_record"
            if own_database.startswith("postgresql") else
            "DROP TRIGGER audit_record_no_update; DROP TRIGGER audit_record_no_delete")
    _run(env, "from django.db import connection\nwith connection.cursor() as c:\n"
              f"    [c.execute(s) for s in {drop.split('; ')!r}]\n"
              "    c.execute(\"UPDATE audit_record SET actor = 'x' WHERE seq = 44\")\n"
              "    c.execute('DELETE FROM audit_record WHERE seq = 29')\n"
              "    c.execute('DELETE FROM audit_record WHERE seq BETWEEN 50 AND 51')\nprint('ok')")
    serial, parallel = _run(env, VERIFY.format(w=1)), _run(env, VERIFY.format(w=3))
    assert serial.startswith("BROKEN at seq 29: deleted") and parallel == serial


@pytest.mark.skipif("connection.vendor != 'sqlite'")
@pytest.mark.parametrize("text", ["2026-11-28 06:29:03.999549", "2026-11-28 06:29:03.999999",
                                  "2026-12-31 23:59:59.999500", "2026-11-28 06:29:03"])
def test_sqlite_walk_time_near_a_whole_second(text: str) -> None:
    """The walk's SQLite time shortcut agrees with the exact conversion just below a second."""
    expr = chain_verify.WALK_SQL["sqlite"].split("SELECT seq, ", 1)[1].split(", actor,", 1)[0]
    with connection.cursor() as cursor:
        # No parameters: the expression's strftime('%s') must reach SQLite as written.
        cursor.execute(f"SELECT {expr} FROM (SELECT '{text}' AS ts)")
        assert cursor.fetchone()[0] == chain_verify._sqlite_micros(text)
