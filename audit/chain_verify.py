"""Walk the audit chain in the database and its checkpoints; report OK or the first break.

Kinds of break, by what the walk sees at a sequence number:
- deleted: the sequence number is missing (the next record has a higher one);
- edited: the record's content no longer hashes to its stored hash;
- reordered: it does not hash to its stored hash at this position, but does at another one
  nearby (the record was moved, e.g. sequence numbers swapped);
- rewritten: a record was replaced together with a recomputed hash, seen where the next record's
  prev_hash no longer matches or where a signed checkpoint names another head hash;
- truncated: a signed checkpoint (stored, in the external sink, or held by the auditor) lies
  beyond the end of the chain;
- bad signature: a checkpoint's signature does not verify with a trusted key.

The walk streams rows through a server-side cursor and hashes each record once; it never loads
the chain into memory. With `workers` > 1 (the `audit verify` command uses one per core) a long
chain is walked in contiguous ranges by worker processes (audit/verify_ranges.py); wherever a
range is not clean, the serial walk below takes over from that range's start, so what is
reported is always exactly what the serial walk reports.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

from audit.checkpoints import audit_signing_key
from audit.models import ONE_MICROSECOND, AuditCheckpoint
from audit.verify_bundle import (
    GENESIS_HASH,
    BundleError,
    check_signature,
    record_hash,
    record_preimage,
)
from audit.verify_ranges import RangeJob, RangeResult, run_in_processes

BATCH = 20_000
# Below this many records, starting worker processes costs more than it saves.
PARALLEL_MIN_RECORDS = 100_000
RANGES_PER_WORKER = 4  # small ranges even out workers that the scheduler serves unequally
MIN_RANGE_RECORDS = 10_000
REORDER_WINDOW = 256
# Per-record reference read: the hashed fields, ts as microseconds since the epoch.
ROW_SQL = {
    # Exact: EXTRACT returns numeric on PostgreSQL 14+.
    "postgresql": "SELECT seq, (EXTRACT(EPOCH FROM ts) * 1000000)::bigint, actor, actor_type, "
                  "action, target, details, request_id, source_addr, prev_hash, hash "
                  "FROM audit_record WHERE seq = %s",
    # Concatenation drops the declared type, so Django's slow datetime converter is skipped.
    "sqlite": "SELECT seq, ts || '', actor, actor_type, action, target, details, request_id, "
              "source_addr, prev_hash, hash FROM audit_record WHERE seq = %s",
}
# The walk reads the same fields with the time converted by the database in C: through a
# double on PostgreSQL (exact to the microsecond for centuries to come), by integer arithmetic on
# SQLite's text. Python never trusts that shortcut: when a record does not hash to its stored
# hash, it is re-read with ROW_SQL (exact numeric conversion) and hashed again before anything
# is reported, so the shortcut can cost time but never raise a false alarm.
WALK_SQL = {
    "postgresql": ROW_SQL["postgresql"]
    .replace("(EXTRACT(EPOCH FROM ts) * 1000000)::bigint",
             "round(date_part('epoch', ts) * 1000000)::bigint")
    .replace("WHERE seq = %s", "ORDER BY seq"),
    "sqlite": ROW_SQL["sqlite"]
    # strftime() only on the whole seconds: SQLite keeps milliseconds internally and would round
    # .9995 s and above up to the next second.
    .replace("ts || ''", "CAST(strftime('%s', substr(ts, 1, 19)) AS INTEGER) * 1000000 "
                         "+ CAST(substr(ts, 21, 6) AS INTEGER)")
    .replace("WHERE seq = %s", "ORDER BY seq"),
}
_NAIVE_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    kind: str
    reason: str


@dataclass
class VerifyResult:
    records: int = 0
    checkpoints: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    last_checkpoint_seq: int | None = None
    elapsed: float = 0.0
    rechecked: int = 0  # rows whose fast-path hash missed and were re-read (expected: 0)
    broken: ChainBreak | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.broken is None

    def summary(self) -> str:
        if self.broken:
            return f"BROKEN at seq {self.broken.seq}: {self.broken.kind}: {self.broken.reason}"
        rate = self.records / self.elapsed if self.elapsed else 0
        return (f"OK: {self.records} records and {self.checkpoints} checkpoints verified; head "
                f"seq {self.head_seq} hash {self.head_hash} ({self.elapsed:.2f} s, "
                f"{rate:,.0f} records/s)")

    def as_details(self) -> dict[str, Any]:
        """The result as audit record details (AUDIT_VERIFIED)."""
        return {
            "ok": self.ok, "records": self.records, "checkpoints": self.checkpoints,
            "head_seq": self.head_seq, "head_hash": self.head_hash,
            "last_checkpoint_seq": self.last_checkpoint_seq,
            "elapsed_ms": round(self.elapsed * 1000),
            "break": asdict(self.broken) if self.broken else None,
        }


def trusted_keys(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """The current audit key plus any keys the caller trusts (e.g. retired ones)."""
    key = audit_signing_key()
    return {key.key_id: key.verify_key_bytes, **(extra or {})}


def _rows(batch: int, from_seq: int = 1) -> Iterator[tuple]:
    """Stream the walk, fetching the next batch in a thread while this one is hashed: the
    database lays out rows on its core while Python hashes on the other (the drivers release
    the GIL while they wait)."""
    with connection.chunked_cursor() as cursor:
        sql = WALK_SQL[connection.vendor]
        if from_seq > 1:
            sql = sql.replace("ORDER BY seq", f"WHERE seq >= {int(from_seq)} ORDER BY seq")
        cursor.execute(sql)
        raw = cursor.cursor  # the driver's cursor: fetched from the helper thread only
        batches: queue.Queue[Any] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def produce() -> None:
            try:
                while not stop.is_set() and (rows := raw.fetchmany(batch)):
                    batches.put(rows)
                batches.put(None)
            except BaseException as e:  # handed to the consumer
                batches.put(e)

        helper = threading.Thread(target=produce, name="audit-verify-fetch", daemon=True)
        helper.start()
        try:
            while (item := batches.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield from item
        finally:
            stop.set()
            while helper.is_alive():  # let it finish its fetch before the cursor closes
                with contextlib.suppress(queue.Empty):
                    batches.get(timeout=0.05)
            helper.join()


def _full_row(seq: int) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(ROW_SQL[connection.vendor], [seq])
        row = cursor.fetchone()
    return (row[0], _sqlite_micros(row[1]), *row[2:]) if isinstance(row[1], str) else row


def _reference_hash(row: tuple) -> str:
    return record_hash(record_preimage(*row[:10]))


def _sqlite_micros(text: str) -> int:
    """Django stores aware datetimes on SQLite as naive UTC text."""
    return (datetime.fromisoformat(text) - _NAIVE_EPOCH) // ONE_MICROSECOND


def _classify_mismatch(row: tuple) -> ChainBreak:
    seq, ts, actor, actor_type, action, target, details, request_id, source_addr, prev, h = row
    for candidate in range(max(1, seq - REORDER_WINDOW), seq + REORDER_WINDOW + 1):
        if candidate != seq and record_hash(record_preimage(
            candidate, ts, actor, actor_type, action, target, details, request_id,
            source_addr, prev,
        )) == h:
            return ChainBreak(seq, "reordered",
                              f"the record at seq {seq} is record {candidate} moved here")
    return ChainBreak(seq, "edited", "the record's content no longer matches its hash")


def walk(rows: Iterable[tuple], checkpoints: dict[int, dict[str, Any]],
         keys: dict[str, bytes], result: VerifyResult, *, expected: int = 1,
         last_hash: str = GENESIS_HASH) -> None:
    """The hot loop: hash and link every row; check checkpoints as their seq comes by.

    The preimage is verify_bundle.record_preimage written inline (two calls fewer per record);
    prev_hash goes in unescaped because the link check below pins it to the previous record's
    hash. Any row whose inline hash does not match is re-read and hashed by the reference code
    before anything is reported (counted in result.rechecked; tests pin that to zero).
    `expected`/`last_hash` start the walk mid-chain, after ranges already verified."""
    sha256, esc = hashlib.sha256, json.encoder.encode_basestring
    for seq, ts, actor, actor_type, action, target, details, request_id, source_addr, prev, h \
            in rows:
        if seq != expected:
            result.broken = ChainBreak(expected, "deleted", f"records {expected}..{seq - 1} are "
                                       "missing" if seq - 1 > expected else "record is missing")
            return
        if sha256(
            f'{{"action":{action:d},"actor":{esc(actor)},"actor_type":{esc(actor_type)},'
            f'"details":{details},"prev_hash":"{prev}","request_id":{esc(request_id)},'
            f'"seq":{seq:d},"source_addr":{esc(source_addr)},"target":{esc(target)},'
            f'"ts":{ts:d}}}'.encode()
        ).hexdigest() != h:
            result.rechecked += 1
            full = _full_row(seq)
            if _reference_hash(full) != h:
                result.broken = _classify_mismatch(full)
                return
        if prev != last_hash:
            result.broken = ChainBreak(seq - 1, "rewritten", f"record {seq - 1} was replaced "
                                       f"with a recomputed hash: record {seq} was chained to "
                                       "another one")
            return
        if seq in checkpoints:
            brk = check_checkpoint(checkpoints[seq], h, keys, "stored checkpoint")
            if brk:
                result.broken = brk
                return
            result.checkpoints += 1
        last_hash = h
        expected += 1
    result.records = expected - 1
    result.head_seq, result.head_hash = expected - 1, last_hash


def check_checkpoint(cp: dict[str, Any], record_hash_at_seq: str | None,
                     keys: dict[str, bytes], source: str) -> ChainBreak | None:
    seq = cp["seq"]
    try:
        check_signature(cp, keys, f"{source} at seq {seq}")
    except BundleError as e:
        return ChainBreak(seq, "bad signature", str(e))
    if record_hash_at_seq is None:
        return ChainBreak(seq, "truncated", f"a signed {source} covers seq {seq}, "
                          "but the chain ends before it")
    if cp["head_hash"] != record_hash_at_seq:
        return ChainBreak(seq, "rewritten", f"the {source} at seq {seq} signed head "
                          f"{cp['head_hash']}, the chain now has {record_hash_at_seq}")
    return None


def verify_chain(*, extra_keys: dict[str, bytes] | None = None,
                 held_checkpoints: list[dict[str, Any]] | None = None,
                 batch: int = BATCH, workers: int = 1,
                 parallel_min_records: int | None = None) -> VerifyResult:
    """Verify the whole chain against its stored checkpoints and any held ones.

    workers > 1 walks a long chain in worker processes (only outside a transaction: they read
    what is committed, through their own connections)."""
    started = time.perf_counter()
    keys = trusted_keys(extra_keys)
    stored = {cp.seq: cp.signed_json() for cp in AuditCheckpoint.objects.order_by("seq")}
    result = VerifyResult(last_checkpoint_seq=max(stored, default=None))
    expected: int | None = 1
    last_hash = GENESIS_HASH
    if workers > 1 and _can_walk_in_processes():
        with connection.cursor() as cursor:
            cursor.execute("SELECT MAX(seq) FROM audit_record")
            head = cursor.fetchone()[0] or 0
        if head >= (PARALLEL_MIN_RECORDS if parallel_min_records is None
                    else parallel_min_records):
            expected, last_hash = _walk_ranges(head, workers, stored, keys, result)
    if expected is not None:  # serial: the whole chain, or from the first range not clean
        walk(_rows(batch, expected), stored, keys, result, expected=expected,
             last_hash=last_hash)
    if result.ok:
        beyond = [cp for seq, cp in stored.items() if seq > result.head_seq]
        for cp in [*beyond, *(held_checkpoints or [])]:
            brk = _check_outside_walk(cp, result, keys)
            if brk:
                result.broken = brk if brk.kind != "truncated" else \
                    ChainBreak(result.head_seq + 1, "truncated", brk.reason)
                break
    result.elapsed = time.perf_counter() - started
    return result


def _can_walk_in_processes() -> bool:
    if connection.in_atomic_block:  # uncommitted rows are invisible to other connections
        return False
    if connection.vendor == "postgresql":
        return True
    return connection.vendor == "sqlite" and not connection.is_in_memory_db()


def _connect_params() -> dict[str, Any]:
    if connection.vendor == "sqlite":
        return {"database": str(connection.settings_dict["NAME"])}
    return {k: v for k, v in connection.get_connection_params().items()
            if isinstance(v, str | int) and k != "cursor_factory"}


def _walk_ranges(head: int, workers: int, stored: dict[int, dict[str, Any]],
                 keys: dict[str, bytes], result: VerifyResult) -> tuple[int | None, str]:
    """Walk 1..head in worker processes. Returns where the serial walk must start (None when
    every range is clean and linked to the one before: the whole chain is verified)."""
    n = max(1, min(workers * RANGES_PER_WORKER, head // MIN_RANGE_RECORDS))
    bounds = [1 + head * i // n for i in range(n + 1)]
    sql = WALK_SQL[connection.vendor]
    params = _connect_params()
    jobs = [RangeJob(
        vendor=connection.vendor, params=params, lo=lo, hi=hi - 1, keys=keys,
        sql=sql.replace("ORDER BY seq", f"WHERE seq BETWEEN {lo} AND {hi - 1} ORDER BY seq"),
        checkpoints={s: cp for s, cp in stored.items() if lo <= s < hi},
    ) for lo, hi in itertools.pairwise(bounds)]
    ranges = run_ranges(jobs, min(workers, n))
    last_hash = GENESIS_HASH
    for r in ranges:
        if not r.clean or r.first_prev != last_hash:
            return r.lo, last_hash
        last_hash = r.last_hash or ""
        result.checkpoints += r.checkpoints
    result.records = result.head_seq = head
    result.head_hash = last_hash
    return None, last_hash


def run_ranges(jobs: list[RangeJob], workers: int) -> list[RangeResult]:
    """walk_range over the jobs in `workers` processes, results in job order."""
    return run_in_processes(jobs, workers)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)


def _check_outside_walk(cp: dict[str, Any], result: VerifyResult,
                        keys: dict[str, bytes]) -> ChainBreak | None:
    """A checkpoint from outside the walk: stored beyond the tail, or held externally."""
    seq = cp.get("seq")
    if not isinstance(seq, int):
        return ChainBreak(0, "bad signature", "a held checkpoint has no sequence number")
    at_seq = None
    if seq <= result.head_seq:
        with connection.cursor() as cursor:
            cursor.execute("SELECT hash FROM audit_record WHERE seq = %s", [seq])
            row = cursor.fetchone()
            at_seq = row[0] if row else None
    return check_checkpoint(cp, at_seq, keys, "held checkpoint")
