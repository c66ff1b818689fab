"""Concurrent appends from several real OS processes against a real database of its own keep
one unbroken chain (no fork, no gap, every append present exactly once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
WORKERS, PER_WORKER = 4, 40


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[str]:
    """A uniquely named database on the server the tests use (a file for SQLite)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        yield f"sqlite:///{tmp_path / 'concurrency.sqlite3'}"
        return
    import psycopg

    name = f"palisade_audit_mp_{uuid.uuid4().hex[:12]}"
    server = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432,
              "user": db["USER"], "password": db["PASSWORD"] or None}
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = server["user"] + (f":{server['password']}" if server["password"] else "")
        yield f"postgresql://{auth}@{server['host']}:{server['port']}/{name}"
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_concurrent_appends_from_processes_keep_one_chain(own_database: str,
                                                          tmp_path: Path) -> None:
    sink = tmp_path / "sink.jsonl"
    env = {**os.environ, "PALISADE_DATABASE_URL": own_database,
           "PALISADE__AUDIT__SINK_PATH": str(sink),
           "PALISADE__AUDIT__CHECKPOINT_EVERY_RECORDS": "7",
           "DJANGO_SETTINGS_MODULE": "homeserver.settings"}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--skip-checks", "-v0"], env=env, cwd=ROOT, check=True)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-m", "tests.audit.append_worker", str(w),
                               str(PER_WORKER), str(go)], env=env, cwd=ROOT)
             for w in range(WORKERS)]
    go.touch()
    assert [p.wait(timeout=240) for p in procs] == [0] * WORKERS

    verified = subprocess.run([*manage, "audit", "verify", "--no-record"], env=env, cwd=ROOT,
                              capture_output=True, text=True)
    total = WORKERS * PER_WORKER
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith(f"OK: {total} records"), verified.stdout
    assert f"head seq {total} " in verified.stdout
    # Every append is there once, and each worker's appends kept their order.
    dump = subprocess.run([*manage, "shell", "-c",
                           "import json; from audit.models import AuditRecord as R; "
                           "print(json.dumps([(r.seq, json.loads(r.details)) for r in "
                           "R.objects.order_by('seq')]))"],
                          env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    rows = json.loads(dump.stdout.strip().splitlines()[-1])
    assert [seq for seq, _ in rows] == list(range(1, total + 1))
    for w in range(WORKERS):
        assert [d["i"] for _, d in rows if d["worker"] == str(w)] == list(range(PER_WORKER))
    sunk = [json.loads(line)["seq"] for line in sink.read_text().splitlines()]
    assert {s for s in range(7, total + 1, 7)} <= set(sunk)
