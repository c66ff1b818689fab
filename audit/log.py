"""Append to the audit chain: `record(...)` inside the transaction of the action it records.

One record = the action's fields + the previous record's hash, hashed with SHA-256 over its
canonical JSON (format: audit/verify_bundle.py). Appends are serialised so the chain never forks:
PostgreSQL takes a transaction-level advisory lock (released at commit or rollback, so a
rolled-back action releases it and leaves nothing); SQLite's IMMEDIATE transactions (see
settings) already hold the database write lock. The sequence number is also the primary key, so
even a misconfigured lock could only fail an append, never fork the chain.

On PostgreSQL an append is ONE round trip (the lock and a prepared INSERT) that reads the head,
takes the time (database clock, under the lock) and hashes the record with sha256() over the
preimage Python built around the three values only the database knows under the lock
(prev_hash, seq, ts). Python then recomputes the hash from what the INSERT returned with the
reference code and refuses (rolling the action back) if the two differ, so the stored hash is
always the one verify_bundle defines.
"""

from __future__ import annotations

import functools
import json
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actions import ActorType, AuditAction
from audit.checkpoints import write_checkpoint
from audit.context import current_context
from audit.models import AuditRecord, to_micros
from audit.verify_bundle import GENESIS_HASH, canonical_json, record_hash, record_preimage

# pg_advisory_xact_lock key: b"PALISADE" as a signed 64-bit integer. Advisory locks are scoped to
# one database, so parallel test databases do not contend.
APPEND_LOCK_KEY = int.from_bytes(b"PALISADE", "big", signed=True)
MAX_DETAILS_BYTES = 64 * 1024
REDACTED = "[redacted]"
# Keys that would carry message content, credentials or tokens. Their values must be REDACTED.
FORBIDDEN_DETAIL_KEYS = frozenset({
    "password", "new_password", "old_password", "access_token", "refresh_token", "token",
    "login_token", "authorization", "secret", "content", "body", "formatted_body", "ciphertext",
})

HEAD_SQL = (
    "SELECT r.seq, r.hash, (SELECT c.ts FROM audit_checkpoint c ORDER BY c.seq DESC LIMIT 1) "
    "FROM audit_record r ORDER BY r.seq DESC LIMIT 1"
)
LOCK_AND_HEAD_SQL = f"SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY}); {HEAD_SQL}"
# Executed right after the lock statement, in the same simple-protocol query (Django's psycopg
# cursor binds client-side): in READ COMMITTED the INSERT takes its snapshot only once the lock
# is held, so it reads the committed head. %(p1)s, %(p2)s, %(p3)s are the preimage around
# prev_hash, seq, ts.
_APPEND_INSERT = (
    "WITH head AS (SELECT seq, hash FROM audit_record ORDER BY seq DESC LIMIT 1), "
    "h AS (SELECT COALESCE((SELECT seq FROM head), 0) + 1 AS seq, "
    "COALESCE((SELECT hash FROM head), %(genesis)s) AS prev, clock_timestamp() AS ts), "
    "r AS (SELECT h.*, (EXTRACT(EPOCH FROM h.ts) * 1000000)::bigint AS us FROM h) "
    "INSERT INTO audit_record (seq, ts, actor, actor_type, action, target, details, request_id,"
    " source_addr, prev_hash, hash) SELECT r.seq, r.ts, %(actor)s, %(actor_type)s, %(action)s,"
    " %(target)s, %(details)s, %(request_id)s, %(source_addr)s, r.prev, encode(sha256("
    "convert_to(%(p1)s || r.prev || %(p2)s || r.seq || %(p3)s || r.us || '}', 'UTF8')), 'hex')"
    " FROM r RETURNING seq, ts, (EXTRACT(EPOCH FROM ts) * 1000000)::bigint, prev_hash, hash,"
    " (SELECT c.ts FROM audit_checkpoint c ORDER BY c.seq DESC LIMIT 1)"
)
_APPEND_PARAMS = ("genesis", "actor", "actor_type", "action", "target", "details", "request_id",
                  "source_addr", "p1", "p2", "p3")
# Planning that INSERT costs more than running it (0.2 ms against 0.15 ms), so each connection
# prepares it once (a session-level prepared statement survives rollbacks; it needs a direct or
# session-pooled connection, as the server-side cursors of audit verify do anyway).
PREPARE_SQL = "PREPARE palisade_audit_append({}) AS {}".format(
    ", ".join("integer" if n == "action" else "text" for n in _APPEND_PARAMS),
    functools.reduce(lambda sql, i: sql.replace(f"%({_APPEND_PARAMS[i]})s", f"${i + 1}"),
                     range(len(_APPEND_PARAMS)), _APPEND_INSERT),
)
APPEND_SQL = (f"SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY}); EXECUTE palisade_audit_append("
              + ", ".join(f"%({n})s" for n in _APPEND_PARAMS) + ")")
_prepared_on: weakref.WeakSet[Any] = weakref.WeakSet()  # psycopg connections
INSERT_SQL = (
    "INSERT INTO audit_record (seq, ts, actor, actor_type, action, target, details, request_id,"
    " source_addr, prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


class AuditUsageError(RuntimeError):
    """`record` was called in a way that could lose or falsify a record."""


def is_redacted(value: Any) -> bool:
    """REDACTED, empty, or a list of those (e.g. a before/after pair of a secret field)."""
    if isinstance(value, list | tuple):
        return all(is_redacted(v) for v in value)
    return value in (REDACTED, None, "")


def check_details(value: Any, path: str = "details") -> None:
    """Refuse details that would put content, tokens or passwords into the audit log."""
    if isinstance(value, dict):
        for key, child in value.items():
            if str(key).lower() in FORBIDDEN_DETAIL_KEYS and not is_redacted(child):
                raise ValueError(f"{path}.{key}: audit details never carry message content, "
                                 f"tokens or passwords (use {REDACTED!r})")
            check_details(child, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, child in enumerate(value):
            check_details(child, f"{path}[{i}]")


def lock_head(cursor: Any, vendor: str) -> tuple[int, str, datetime | None]:
    """Serialise appends and read the head: (seq, hash, time of the last checkpoint)."""
    if vendor == "postgresql":
        # One round trip, two statements: the head is read by the second, whose snapshot is
        # taken only once the first holds the lock (READ COMMITTED: a snapshot per statement).
        cursor.execute(LOCK_AND_HEAD_SQL)
        cursor.nextset()
    else:
        cursor.execute(HEAD_SQL)
    row = cursor.fetchone()
    if row is None:
        return 0, GENESIS_HASH, None
    return row[0], row[1], db_datetime(row[2])


def db_datetime(value: Any) -> datetime | None:
    """A timestamp as the driver returned it (aware, naive UTC, or SQLite text) -> aware UTC."""
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def record(
    action: AuditAction,
    *,
    actor: str,
    actor_type: ActorType = ActorType.USER,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record to the chain, in the caller's transaction.

    Must run inside `transaction.atomic()`: the record commits or rolls back with the action.
    Request id and source address come from the request's audit context.
    """
    action = AuditAction(action)
    actor_type = ActorType(actor_type)
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        raise AuditUsageError("audit.log.record() must be called inside transaction.atomic(), "
                              "in the same transaction as the action it records")
    # PostgreSQL text cannot hold NUL; keep the record rather than fail the action.
    actor, target = actor.replace("\x00", "\ufffd"), target.replace("\x00", "\ufffd")
    if len(actor) > 255 or len(target) > 255:
        raise ValueError("audit actor and target are at most 255 characters")
    details = details or {}
    check_details(details)
    details_json = canonical_json(details).decode("utf-8")
    if len(details_json) > MAX_DETAILS_BYTES:
        raise ValueError(f"audit details exceed {MAX_DETAILS_BYTES} bytes")
    ctx = current_context()
    if conn.vendor == "postgresql":
        seq, now, head_hash, digest, last_checkpoint = _append_postgresql(
            conn, actor, actor_type.value, action.value, target, details_json, ctx)
        if checkpoint_due(seq, now, last_checkpoint):
            write_checkpoint(seq, digest, now)
        return AuditRecord(
            seq=seq, ts=now, actor=actor, actor_type=actor_type.value, action=action.value,
            target=target, details=details_json, request_id=ctx.request_id,
            source_addr=ctx.source_addr, prev_hash=head_hash, hash=digest,
        )
    with conn.cursor() as cursor:
        head_seq, head_hash, last_checkpoint = lock_head(cursor, conn.vendor)
        now = timezone.now()  # taken under the lock, so time never runs backwards along seq
        seq = head_seq + 1
        digest = record_hash(record_preimage(
            seq, to_micros(now), actor, actor_type.value, action.value, target, details_json,
            ctx.request_id, ctx.source_addr, head_hash,
        ))
        cursor.execute(INSERT_SQL, [
            seq, conn.ops.adapt_datetimefield_value(now), actor, actor_type.value,
            action.value, target, details_json, ctx.request_id, ctx.source_addr, head_hash,
            digest,
        ])
    if checkpoint_due(seq, now, last_checkpoint):
        write_checkpoint(seq, digest, now)
    return AuditRecord(
        seq=seq, ts=now, actor=actor, actor_type=actor_type.value, action=action.value,
        target=target, details=details_json, request_id=ctx.request_id,
        source_addr=ctx.source_addr, prev_hash=head_hash, hash=digest,
    )


def _append_postgresql(conn: Any, actor: str, actor_type: str, action: int, target: str,
                       details_json: str, ctx: Any) -> tuple[int, datetime, str, str,
                                                             datetime | None]:
    """Lock, insert and hash in one round trip; check the hash with the reference code."""
    esc = json.encoder.encode_basestring  # verify_bundle.record_preimage's escaping
    p1 = (f'{{"action":{action:d},"actor":{esc(actor)},"actor_type":{esc(actor_type)},'
          f'"details":{details_json},"prev_hash":"')
    p2 = f'","request_id":{esc(ctx.request_id)},"seq":'
    p3 = f',"source_addr":{esc(ctx.source_addr)},"target":{esc(target)},"ts":'
    params = {
        "genesis": GENESIS_HASH, "actor": actor, "actor_type": actor_type, "action": action,
        "target": target, "details": details_json, "request_id": ctx.request_id,
        "source_addr": ctx.source_addr, "p1": p1, "p2": p2, "p3": p3,
    }
    raw = conn.connection
    if raw not in _prepared_on:
        # Once per connection, outside Django's query log (session setup, like its SETs).
        with conn.wrap_database_errors:
            raw.execute(PREPARE_SQL)
        _prepared_on.add(raw)
    with conn.cursor() as cursor:
        cursor.execute(APPEND_SQL, params)
        cursor.nextset()
        seq, ts, us, prev, digest, last_checkpoint = cursor.fetchone()
    reference = record_hash(record_preimage(seq, us, actor, actor_type, action, target,
                                            details_json, ctx.request_id, ctx.source_addr,
                                            prev))
    if reference != digest or to_micros(ts) != us:
        raise AuditUsageError(f"audit append at seq {seq}: the database computed hash "
                              f"{digest}, the reference hash is {reference}")
    return seq, ts, prev, digest, db_datetime(last_checkpoint)


def record_system(
    action: AuditAction, *, target: str = "", details: dict[str, Any] | None = None,
    actor: str = "system",
) -> AuditRecord:
    """`record` for what the server does by itself (start-up, sweeps, scheduled tasks)."""
    return record(action, actor=actor, actor_type=ActorType.SYSTEM, target=target,
                  details=details)


def checkpoint_due(seq: int, now: datetime, last_checkpoint: datetime | None) -> bool:
    cfg = settings.PALISADE.audit
    if last_checkpoint is None or seq % cfg.checkpoint_every_records == 0:
        return True
    return now - last_checkpoint >= timedelta(minutes=cfg.checkpoint_every_minutes)


def checkpoint_now() -> tuple[int, str]:
    """Checkpoint the current head unless a checkpoint already covers it; returns (seq, hash).

    For exports (their bundle must end at a signed checkpoint) and `manage.py audit
    checkpoint` (cron/timer: bounds the unanchored tail in idle periods)."""
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        raise AuditUsageError("checkpoint_now() must be called inside transaction.atomic()")
    with conn.cursor() as cursor:
        seq, head_hash, _ = lock_head(cursor, conn.vendor)
        if seq == 0:
            return 0, GENESIS_HASH
        cursor.execute("SELECT 1 FROM audit_checkpoint WHERE seq = %s", [seq])
        if cursor.fetchone() is None:
            write_checkpoint(seq, head_hash, timezone.now())
    return seq, head_hash
