"""Walk one range of the audit chain in a worker process (no Django: standard library, psycopg
and PyNaCl), so `audit verify` can check a long chain on several cores.

`chain_verify.verify_chain(workers=N)` splits 1..head into contiguous sequence ranges and runs
`walk_range` on each. A worker checks inside its range everything the serial walk checks:
contiguous sequence numbers starting at the range's first, each record's hash, each link
except the first one (whose `prev_hash` it returns so the parent can check the boundary against
the previous range's last hash), and every stored checkpoint in the range (signature and head
hash). It answers either CLEAN with (first prev_hash, last hash, records, checkpoints), or the
sequence number where it saw the first problem. It never classifies a problem: the parent
re-walks serially from the start of the first range that is not clean, with the reference code,
so the report (first broken sequence number, kind, reason) is exactly the serial walk's.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import queue
import sqlite3
import struct
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from audit.verify_bundle import BundleError, check_signature

STREAM_CHUNK = 5_000

# One connection per worker process, reused across the ranges it is given.
_conn: Any = None


@dataclass(frozen=True)
class RangeJob:
    vendor: str            # "postgresql" or "sqlite"
    params: dict[str, Any]  # psycopg.connect keyword arguments, or {"database": path}
    sql: str               # the walk's SELECT for seq lo..hi, ORDER BY seq
    lo: int
    hi: int
    checkpoints: dict[int, dict[str, Any]]  # signed checkpoints with lo <= seq <= hi
    keys: dict[str, bytes]


@dataclass(frozen=True)
class RangeResult:
    lo: int
    hi: int
    clean: bool
    problem_seq: int | None = None
    first_prev: str | None = None
    last_hash: str | None = None
    records: int = 0
    checkpoints: int = 0


def _connect(job: RangeJob) -> Any:
    global _conn
    if _conn is None:
        if job.vendor == "postgresql":
            import psycopg

            _conn = psycopg.connect(**job.params, autocommit=True)
        else:
            _conn = sqlite3.connect(job.params["database"])
    return _conn


def _rows(job: RangeJob) -> Any:
    conn = _connect(job)
    if job.vendor == "postgresql":
        # Chunked streaming (libpq >= 17): PostgreSQL keeps producing rows into the socket
        # while this process hashes the previous chunk.
        return conn.cursor().stream(job.sql, size=STREAM_CHUNK)
    return conn.execute(job.sql)


def walk_range(job: RangeJob) -> RangeResult:
    """In a worker process: read seq lo..hi over this process's own connection and check it."""
    rows = _rows(job)
    try:
        return check_range(job, rows)
    finally:
        close = getattr(rows, "close", None)
        if close:
            close()  # ends a stream left early (a problem) so the connection is reusable


def check_range(job: RangeJob, rows: Iterable[tuple]) -> RangeResult:
    """The serial walk's checks for seq lo..hi (same inline preimage as chain_verify.walk)."""
    sha256, esc = hashlib.sha256, json.encoder.encode_basestring
    expected, last, first_prev, cps = job.lo, None, None, 0
    problem: int | None = None
    for seq, ts, actor, actor_type, action, target, details, request_id, source_addr, \
            prev, h in rows:
        if seq != expected or sha256(
            f'{{"action":{action:d},"actor":{esc(actor)},"actor_type":{esc(actor_type)},'
            f'"details":{details},"prev_hash":"{prev}","request_id":{esc(request_id)},'
            f'"seq":{seq:d},"source_addr":{esc(source_addr)},"target":{esc(target)},'
            f'"ts":{ts:d}}}'.encode()
        ).hexdigest() != h:
            problem = expected
            break
        if last is None:
            first_prev = prev
        elif prev != last:
            problem = seq
            break
        cp = job.checkpoints.get(seq)
        if cp is not None:
            try:
                check_signature(cp, job.keys, f"stored checkpoint at seq {seq}")
            except BundleError:
                problem = seq
                break
            if cp.get("head_hash") != h:
                problem = seq
                break
            cps += 1
        last = h
        expected += 1
    if problem is None and expected - 1 != job.hi:
        problem = expected  # the range ends short: records missing at its end
    if problem is not None:
        return RangeResult(job.lo, job.hi, clean=False, problem_seq=problem)
    return RangeResult(job.lo, job.hi, clean=True, first_prev=first_prev, last_hash=last,
                       records=expected - job.lo, checkpoints=cps)


# --- worker processes ---------------------------------------------------------------------------
# Plain subprocesses (`python -m audit.verify_ranges`) rather than multiprocessing: they do not
# re-import the caller's __main__ (a manage.py command, a bench script, a server worker), and
# they load only this module. The parent hands out ranges one at a time (one feeder thread per
# worker), so a worker the scheduler serves less simply takes fewer ranges.

def _send(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj)
    stream.write(struct.pack("!I", len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack("!I", head)
    return pickle.loads(stream.read(size))  # noqa: S301 (our own child/parent pipe)


def run_in_processes(jobs: list[RangeJob], workers: int) -> list[RangeResult]:
    """walk_range over the jobs in `workers` child processes; results in job order."""
    todo: queue.Queue[tuple[int, RangeJob]] = queue.Queue()
    for item in enumerate(jobs):
        todo.put(item)
    results: list[RangeResult | None] = [None] * len(jobs)
    errors: list[str] = []
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}

    def feed() -> None:
        try:
            feed_one_child()
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")

    def feed_one_child() -> None:
        child = subprocess.Popen([sys.executable, "-m", "audit.verify_ranges"], env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert child.stdin and child.stdout
        try:
            while not errors:
                try:
                    i, job = todo.get_nowait()
                except queue.Empty:
                    break
                _send(child.stdin, job)
                answer = _receive(child.stdout)
                if not isinstance(answer, RangeResult):
                    errors.append(f"range {job.lo}..{job.hi}: {answer!r}")
                    break
                results[i] = answer
        finally:
            child.stdin.close()
            if child.wait(timeout=60) != 0 and not errors:
                errors.append(f"verify worker exited with status {child.returncode}")

    threads = [threading.Thread(target=feed, name=f"audit-verify-{n}", daemon=True)
               for n in range(max(1, min(workers, len(jobs))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors or any(r is None for r in results):
        raise RuntimeError("parallel audit verify failed: " + "; ".join(errors or ["lost"]))
    return results  # type: ignore[return-value]


def main() -> int:
    """Child: answer each RangeJob read from stdin with its RangeResult (or an error text)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (job := _receive(stdin)) is not None:
        try:
            answer: Any = walk_range(job)
        except Exception as e:  # reported by the parent, which then fails the verify
            answer = f"{type(e).__name__}: {e}"
        _send(stdout, answer)
    return 0


if __name__ == "__main__":
    # Run as the importable module, so pickled jobs and results name audit.verify_ranges.
    from audit.verify_ranges import main as module_main

    sys.exit(module_main())
