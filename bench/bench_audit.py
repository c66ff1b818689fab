"""Audit chain benchmarks: append overhead per action and verification throughput.

    .venv/bin/python bench/bench_audit.py                     # SQLite, and PostgreSQL if up
    .venv/bin/python bench/bench_audit.py --backend postgres --records 1000000

Each backend runs in its own process against a fresh database of its own (a temporary SQLite
file, or a temporary PostgreSQL database on PALISADE_BENCH_PG, default
postgresql://postgres@127.0.0.1:5432/postgres), which is dropped afterwards.

- append: p50/p95 of `record()` inside a transaction (the overhead an action pays), and of the
  whole transaction with its commit. Target: p50 <= 1 ms on PostgreSQL.
- verify: a valid chain of --records records (bulk-loaded with a signed checkpoint every
  1,000) is walked by the same code as `manage.py audit verify` (by default with one worker
  process per core, as the command does; `--workers 1,2` runs serial and 2 workers).
  Target: >= 100,000 records/s. Also printed: records per CPU second of the verifier processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("PALISADE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


def bench_append(n: int) -> None:
    from django.db import transaction

    from audit.actions import AuditAction
    from audit.log import record

    inner, whole = [], []
    for i in range(n):
        t0 = time.perf_counter()
        with transaction.atomic():
            t1 = time.perf_counter()
            record(AuditAction.MEMBERSHIP_CHANGED, actor="@alice:example.org",
                   target="!room:example.org", details={"membership": "join", "i": i})
            inner.append(time.perf_counter() - t1)
        whole.append(time.perf_counter() - t0)
    ms = 1000
    print(f"  append (load average {os.getloadavg()[0]:.1f}): "
          f"record() p50 {percentile(inner, 50) * ms:.3f} ms, "
          f"p95 {percentile(inner, 95) * ms:.3f} ms; whole transaction incl. commit "
          f"p50 {percentile(whole, 50) * ms:.3f} ms ({n} appends)")


def bulk_load(n: int) -> None:
    """Write a valid n-record chain (plus checkpoints) directly, as fast as the driver allows."""
    from django.conf import settings
    from django.db import connection, transaction

    from audit.checkpoints import audit_signing_key, register_key, sign_object
    from audit.models import AuditCheckpoint, to_micros
    from audit.verify_bundle import GENESIS_HASH, record_hash, record_preimage

    start = datetime(2025, 1, 1, tzinfo=UTC)
    key = audit_signing_key()
    with connection.cursor() as cursor:  # continue after whatever the append bench wrote
        cursor.execute("SELECT seq, hash FROM audit_record ORDER BY seq DESC LIMIT 1")
        first, prev = cursor.fetchone() or (0, GENESIS_HASH)
    rows, cps = [], []
    for seq in range(first + 1, first + n + 1):
        ts = datetime.now(UTC) + timedelta(milliseconds=seq)
        details = '{"i":%d,"membership":"join"}' % seq  # noqa: UP031 (canonical by hand)
        h = record_hash(record_preimage(seq, to_micros(ts), "@alice:example.org", "user", 3001,
                                        "!room:example.org", details, "req", "127.0.0.1", prev))
        rows.append((seq, ts, "@alice:example.org", "user", 3001, "!room:example.org", details,
                     "req", "127.0.0.1", prev, h))
        if seq % 1000 == 0 or seq == first + n:
            signed = sign_object({"head_hash": h, "seq": seq,
                                  "server_name": settings.PALISADE.server_name,
                                  "ts": to_micros(ts)})
            cps.append(AuditCheckpoint(seq=seq, head_hash=h, ts=ts,
                                       server_name=signed["server_name"], key_id=key.key_id,
                                       signature=signed["signatures"][signed["server_name"]][
                                           key.key_id]))
        prev = h
    cols = ("seq, ts, actor, actor_type, action, target, details, request_id, source_addr, "
            "prev_hash, hash")
    with transaction.atomic(), connection.cursor() as cursor:
        register_key(key, start)
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY audit_record ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(f"INSERT INTO audit_record ({cols}) VALUES "
                               "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                               [(*r[:1], connection.ops.adapt_datetimefield_value(r[1]), *r[2:])
                                for r in rows])
        AuditCheckpoint.objects.bulk_create(cps, batch_size=500)


def bench_verify(n: int, workers: list[int]) -> None:
    import resource

    from audit.chain_verify import verify_chain

    t0 = time.perf_counter()
    bulk_load(n)
    print(f"  verify: loaded {n:,} records in {time.perf_counter() - t0:.1f} s")
    for w in workers:
        cpu = time.process_time()
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_before = os.getloadavg()[0]
        result = verify_chain(workers=w)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU of this process and of the range workers it started (they have exited by now);
        # PostgreSQL's own CPU is not included.
        cpu = time.process_time() - cpu + (after.ru_utime + after.ru_stime
                                           - kids.ru_utime - kids.ru_stime)
        assert result.ok and result.rechecked == 0, result.summary()
        print(f"  verify, {w} worker process{'es' if w > 1 else ''}: {result.records:,} records "
              f"+ {result.checkpoints} checkpoints in {result.elapsed:.2f} s = "
              f"{result.records / result.elapsed:,.0f} records/s (wall clock; load average "
              f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} cores)")
        # CPU seconds do not depend much on what else the machine runs.
        print(f"      {cpu:.2f} CPU s in the verifier processes = {result.records / cpu:,.0f} "
              "records per CPU second")


def run_backend(backend: str, records: int, appends: int, workers: list[int]) -> None:
    """Child process: a fresh database, migrate, then both benchmarks."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "homeserver.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, skip_checks=True)
    from django.db import connection

    print(f"{backend} ({connection.vendor}, {connection.settings_dict['NAME']}):")
    bench_append(appends)
    bench_verify(records, workers)


def spawn(backend: str, records: int, appends: int, workers: list[int]) -> int:
    env = dict(os.environ, PALISADE__AUDIT__SINK_PATH="")
    cleanup = None
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "sqlite":
            env["PALISADE_DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
        else:
            import psycopg

            name = f"palisade_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            env["PALISADE_DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
            cleanup = name
        try:
            return subprocess.call([sys.executable, __file__, "--child", backend, "--records",
                                    str(records), "--appends", str(appends),
                                    "--workers", ",".join(map(str, workers))], env=env, cwd=ROOT)
        finally:
            if cleanup:
                import psycopg

                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{cleanup}" WITH (FORCE)')


def postgres_up() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--workers", default="",
                        help="comma-separated verify worker counts to run, e.g. 1,2 "
                             "(default: one per core, as `manage.py audit verify` does)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    workers = [int(w) for w in args.workers.split(",") if w] or \
        [len(os.sched_getaffinity(0))]
    if args.child:
        run_backend(args.child, args.records, args.appends, workers)
        return 0
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    if "postgres" in backends and not postgres_up():
        print(f"postgres: not reachable at {PG_ADMIN_URL}; skipped")
        backends.remove("postgres")
    return max((spawn(b, args.records, args.appends, workers) for b in backends), default=0)


if __name__ == "__main__":
    sys.exit(main())
