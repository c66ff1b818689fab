"""Delivering the outbound queue: one sender per destination, one transaction in flight.

Spec: server-server API "Transactions" (PUT /_matrix/federation/v1/send/{txnId}): at most 50
PDUs and 100 EDUs per transaction; "the sending server must wait and retry for a 200 OK response
before sending a transaction with a different txnId". REQUIREMENTS.md A_25534: nothing is sent
to a destination the allow/deny lists refuse.

`deliver(destination)` takes the destination's lease (storage.federation_outbox.claim), then
sends transactions in queue order until the queue is empty: on 200 the rows are deleted and the
next batch goes (that is the pacing: a receiving server never sees a burst of parallel
transactions from us); on failure the rows stay (stamped with their txn id, so the retry is the
same transaction), the destination backs off exponentially and a retry is scheduled.

Where it runs (`schedule`): with Redis, as Celery tasks (tasks/federation.py) on `[federation]
celery_queue`; without Redis (the embedded default, where Celery would run tasks eagerly inside
the request), on a daemon thread, so a request never waits for a remote server. Restarts: the
queue is in the database; a worker's start and Celery beat's periodic sweep (`sweep`) kick every
destination with due rows (embedded: a sweeper thread, started with the process's first
delivery); a crashed sender's lease expires after request_timeout + LEASE_MARGIN_S.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid

from django.conf import settings
from django.db import connections, transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from compliance.federation_access import decide
from homeserver.protocol.errors import MatrixError
from homeserver.services.background import tasks_run_in_process
from homeserver.services.federation import client
from homeserver.storage import federation_outbox as store

logger = logging.getLogger(__name__)

MAX_PDUS, MAX_EDUS = 50, 100  # Spec: server-server API "Transactions"
# Transactions one task sends before handing the destination back to the queue (fairness
# between destinations sharing few workers); the follow-up task continues in order.
MAX_BATCHES_PER_RUN = 20
LEASE_MARGIN_S = 15


def now_ms() -> int:
    return int(time.time() * 1000)


def _lease_ms() -> int:
    return int((settings.PALISADE.federation.request_timeout_seconds + LEASE_MARGIN_S) * 1000)


def backoff_seconds(failures: int) -> float:
    """Wait after the `failures`-th consecutive failure: initial * 2^(failures-1), capped."""
    cfg = settings.PALISADE.federation
    return min(cfg.retry_max_seconds, cfg.retry_initial_seconds * 2 ** max(0, failures - 1))


def _run_in_thread(delay: float, destination: str) -> None:
    def run() -> None:
        try:
            deliver(destination)
        except Exception:
            logger.exception("federation delivery to %s failed", destination)
        finally:
            connections.close_all()  # this thread's connections only

    timer = threading.Timer(delay, run)
    timer.daemon = True
    timer.start()


_sweeper_lock = threading.Lock()
_sweeper_pid: int | None = None


def _ensure_embedded_sweeper() -> None:
    """Embedded mode has no Celery beat: the first delivery a process schedules also starts a
    daemon thread there that sweeps the queue every sweep_interval_seconds (retries whose timer
    died with an earlier process, kicks that found a dead sender's lease)."""
    global _sweeper_pid
    if _sweeper_pid == os.getpid():
        return
    with _sweeper_lock:
        if _sweeper_pid == os.getpid():
            return
        _sweeper_pid = os.getpid()
        threading.Thread(target=_sweep_forever, daemon=True,
                         name="palisade-outbound-sweep").start()


def resume_embedded() -> None:
    """At `palisade serve` start without Redis (no Celery worker to resume the queue): send
    what an earlier run left queued, and keep sweeping from this process."""
    if not tasks_run_in_process():
        return
    try:
        release_stale_leases()
        sweep()
    except Exception:  # never keep the server from starting; the sweeper retries
        logger.exception("federation outbound queue: resuming at start failed")
    _ensure_embedded_sweeper()


def _sweep_forever() -> None:
    while True:
        time.sleep(settings.PALISADE.federation.sweep_interval_seconds)
        try:
            sweep()
        except Exception:
            logger.exception("federation outbound sweep failed")
        finally:
            connections.close_all()  # this thread's connections only


def schedule(destination: str, delay: float = 0.0) -> None:
    """Run `deliver(destination)` after `delay` seconds, off the request path."""
    if tasks_run_in_process():
        _ensure_embedded_sweeper()
        _run_in_thread(delay, destination)
        return
    from homeserver.tasks.federation import deliver_task

    deliver_task.apply_async((destination,), countdown=delay or None,
                             queue=settings.PALISADE.federation.celery_queue)


def kick_on_commit(destinations: set[str]) -> None:
    """After the writing transaction commits, start delivery to each destination."""
    def kick() -> None:
        for d in sorted(destinations):
            try:
                schedule(d)
            except Exception:  # a lost kick delays delivery until the next sweep; never fail
                logger.exception("could not schedule federation delivery to %s", d)

    transaction.on_commit(kick)


def sweep() -> list[str]:
    """Kick every destination with due rows (worker start, Celery beat)."""
    due = store.due_destinations(now_ms())
    for d in due:
        schedule(d)
    return due


def drop_refused(destination: str, rule: str) -> dict[str, int]:
    """The lists refuse `destination` now: drop what is queued for it, with one audit record."""
    with transaction.atomic():
        dropped = store.drop_destination(destination)
        if dropped["pdus"] or dropped["edus"]:
            record(AuditAction.FEDERATION_OUTBOUND_DROPPED, actor="system",
                   actor_type=ActorType.SYSTEM, target=destination,
                   details={"rule": rule, **dropped})
    logger.info("dropped outbound queue for %s (%s): %s", destination, rule, dropped)
    return dropped


def _owner_prefix() -> str:
    return f"{socket.gethostname()[:30]}:"


def deliver(destination: str) -> str:
    """Send what is queued for `destination`; returns what happened ("sent", "idle", "busy",
    "failed", "dropped", "yielded", "lost-lease")."""
    rule = decide(destination)
    if rule is not None:
        drop_refused(destination, rule)
        return "dropped"
    owner = f"{_owner_prefix()}{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if not store.claim(destination, owner, now_ms(), _lease_ms()):
        return "busy"
    outcome, retry_in = "idle", 0.0
    try:
        outcome, retry_in = _send_batches(destination, owner)
    finally:
        store.release(destination, owner)
    # Scheduled only once the lease is free, so the follow-up can take it.
    if outcome == "failed":
        schedule(destination, retry_in)
    elif outcome == "yielded" or (outcome in ("sent", "idle") and store.has_items(destination)):
        # More to send, or rows committed after our last look whose kick found us busy.
        schedule(destination)
    return outcome


def _send_batches(destination: str, owner: str) -> tuple[str, float]:
    outcome = "idle"
    for _ in range(MAX_BATCHES_PER_RUN):
        with transaction.atomic():
            batch = store.next_batch(destination, MAX_PDUS, MAX_EDUS)
        if batch is None:
            return outcome, 0.0
        rule = decide(destination)  # the lists can change while a queue drains
        if rule is not None:
            drop_refused(destination, rule)
            return "dropped", 0.0
        body = {"origin": settings.PALISADE.server_name, "origin_server_ts": now_ms(),
                "pdus": batch.pdus}
        if batch.edus:
            body["edus"] = batch.edus
        path = "/_matrix/federation/v1/send/" + client.path_of(batch.txn_id)
        try:
            answer = asyncio.run(client.request("PUT", destination, path, content=body))
        except client.FederationError as e:
            return "failed", _failed(destination, batch.txn_id, str(e))
        except MatrixError as e:  # check_destination: refused between our check and the send
            drop_refused(destination, e.error)
            return "dropped", 0.0
        _log_pdu_errors(destination, batch.txn_id, answer)
        with transaction.atomic():
            store.complete(destination, batch.item_ids, now_ms())
        outcome = "sent"
        if not store.renew(destination, owner, now_ms(), _lease_ms()):
            return "lost-lease", 0.0
    return ("yielded" if store.has_items(destination) else outcome), 0.0


def release_stale_leases() -> list[str]:
    """At worker start: leases held by senders on this host that no longer run (a worker killed
    mid-transaction) are freed at once instead of after their expiry. A lease naming our own
    pid is stale too (we hold none yet; containers reuse pids)."""
    freed = []
    for destination, owner in store.leases_with_prefix(_owner_prefix()):
        try:
            pid = int(owner.split(":")[-2])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid() or not _alive(pid):
            store.release(destination, owner)
            freed.append(destination)
    return freed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _failed(destination: str, txn_id: str, error: str) -> float:
    failures = store.failures(destination) + 1
    delay = backoff_seconds(failures)
    store.record_failure(destination, now_ms(), int(delay * 1000), error)
    logger.warning("federation transaction %s to %s failed (%s); retry #%d in %.1fs",
                   txn_id, destination, error, failures, delay)
    return delay


def _log_pdu_errors(destination: str, txn_id: str, answer: object) -> None:
    """Spec: a 200 carries per-PDU results; an error there is the receiver's verdict on that
    event (e.g. it failed auth), not a delivery failure: logged, never retried."""
    pdus = answer.get("pdus") if isinstance(answer, dict) else None
    if not isinstance(pdus, dict):
        return
    for event_id, result in pdus.items():
        if isinstance(result, dict) and result.get("error"):
            logger.warning("%s rejected %s in transaction %s: %s", destination, event_id,
                           txn_id, str(result["error"])[:300])
