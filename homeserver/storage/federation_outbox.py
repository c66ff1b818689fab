"""The federation outbound queue: items per destination in order, and each destination's
delivery state (see models/federation_outbound.py).

Spec: server-server API "Transactions": at most 50 PDUs and 100 EDUs per transaction; the
sender waits for a 200 before sending a transaction with a different txnId.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from django.db.models import Count, Exists, F, OuterRef, Q

from homeserver.models import CurrentState, OutboundDestination, OutboundItem

PDU, EDU = OutboundItem.KIND_PDU, OutboundItem.KIND_EDU


@dataclass(frozen=True)
class Batch:
    """One transaction's worth of queued items, in queue order."""

    txn_id: str
    item_ids: list[int]
    pdus: list[dict]
    edus: list[dict]


@dataclass(frozen=True)
class DestinationState:
    destination: str
    retry_at_ts: int
    backoff_ms: int
    failures: int
    last_success_ts: int | None
    last_error: str
    queued: int


def queue(kind: str, json_text: str, destinations: Iterable[str], now_ms: int) -> int:
    """Append one item for each destination (inside the caller's transaction); returns how many
    rows were written."""
    rows = [OutboundItem(destination=d, kind=kind, json=json_text, created_ts=now_ms)
            for d in destinations]
    OutboundItem.objects.bulk_create(rows)
    return len(rows)


def servers_in_room(room_id: str) -> set[str]:
    """Server names of the room's joined members in its current state."""
    user_ids = CurrentState.objects.filter(
        room_id=room_id, type="m.room.member", membership="join"
    ).values_list("state_key", flat=True)
    return {u.split(":", 1)[1] for u in user_ids if ":" in u}


def _ensure_destination(destination: str) -> None:
    OutboundDestination.objects.bulk_create(
        [OutboundDestination(destination=destination)], ignore_conflicts=True
    )


def claim(destination: str, owner: str, now_ms: int, lease_ms: int) -> bool:
    """Take the destination's sending lease if it is free (or expired, or already ours) and its
    backoff has passed. One conditional UPDATE: never two senders for one destination."""
    _ensure_destination(destination)
    return bool(OutboundDestination.objects.filter(
        Q(lease_until_ts__lt=now_ms) | Q(lease_owner=owner),
        destination=destination, retry_at_ts__lte=now_ms,
    ).update(lease_owner=owner, lease_until_ts=now_ms + lease_ms))


def renew(destination: str, owner: str, now_ms: int, lease_ms: int) -> bool:
    """Extend our lease; False when it was lost (expired and taken by another sender)."""
    return bool(OutboundDestination.objects.filter(
        destination=destination, lease_owner=owner
    ).update(lease_until_ts=now_ms + lease_ms))


def release(destination: str, owner: str) -> None:
    OutboundDestination.objects.filter(destination=destination, lease_owner=owner).update(
        lease_owner="", lease_until_ts=0
    )


def next_batch(destination: str, max_pdus: int, max_edus: int) -> Batch | None:
    """The transaction to send next: the rows already stamped with a txn id (a retry re-sends
    exactly them), else the next rows in queue order up to the limits, stamped now. Inside the
    caller's transaction."""
    first = (OutboundItem.objects.filter(destination=destination).exclude(txn_id=None)
             .order_by("id").values_list("txn_id", flat=True).first())
    if first is not None:
        pinned = list(OutboundItem.objects.filter(destination=destination, txn_id=first)
                      .order_by("id").values_list("id", "kind", "json"))
        return _batch(first, pinned)
    candidates = (OutboundItem.objects.filter(destination=destination).order_by("id")
                  .values_list("id", "kind", "json", "created_ts")[: max_pdus + max_edus])
    chosen, counts = [], {PDU: 0, EDU: 0}
    for row in candidates:
        limit = max_pdus if row[1] == PDU else max_edus
        if counts[row[1]] >= limit:
            break  # stop at the first item that does not fit: queue order is kept
        counts[row[1]] += 1
        chosen.append(row)
    if not chosen:
        return None
    # Derived from the rows: the first row's enqueue time and id, unique for this server.
    txn_id = f"{chosen[0][3]}.{chosen[0][0]}"
    OutboundItem.objects.filter(id__in=[r[0] for r in chosen]).update(txn_id=txn_id)
    return _batch(txn_id, chosen)


def _batch(txn_id: str, rows: list[tuple]) -> Batch:
    pdus, edus = [], []
    for row in rows:
        (pdus if row[1] == PDU else edus).append(orjson.loads(row[2]))
    return Batch(txn_id=txn_id, item_ids=[r[0] for r in rows], pdus=pdus, edus=edus)


def complete(destination: str, item_ids: list[int], now_ms: int) -> None:
    """The receiver answered 200: the rows are delivered; the destination is healthy. Inside
    the caller's transaction."""
    OutboundItem.objects.filter(id__in=item_ids).delete()
    OutboundDestination.objects.filter(destination=destination).update(
        retry_at_ts=0, backoff_ms=0, failures=0, last_success_ts=now_ms, last_error=""
    )


def record_failure(destination: str, now_ms: int, backoff_ms: int, error: str) -> None:
    OutboundDestination.objects.filter(destination=destination).update(
        failures=F("failures") + 1, backoff_ms=backoff_ms, retry_at_ts=now_ms + backoff_ms,
        last_error=error[:1000],
    )


def failures(destination: str) -> int:
    return (OutboundDestination.objects.filter(destination=destination)
            .values_list("failures", flat=True).first() or 0)


def has_items(destination: str) -> bool:
    return OutboundItem.objects.filter(destination=destination).exists()


def drop_destination(destination: str) -> dict[str, int]:
    """Delete everything queued for `destination` (inside the caller's transaction); returns
    how many PDUs and EDUs were dropped."""
    counts = dict(OutboundItem.objects.filter(destination=destination)
                  .values_list("kind").annotate(n=Count("id")).values_list("kind", "n"))
    OutboundItem.objects.filter(destination=destination).delete()
    OutboundDestination.objects.filter(destination=destination).delete()
    return {"pdus": counts.get(PDU, 0), "edus": counts.get(EDU, 0)}


def due_destinations(now_ms: int) -> list[str]:
    """Destinations with queued items whose backoff has passed and whose lease is free."""
    busy = OutboundDestination.objects.filter(destination=OuterRef("destination")).filter(
        Q(retry_at_ts__gt=now_ms) | Q(lease_until_ts__gte=now_ms)
    )
    return sorted(set(OutboundItem.objects.filter(~Exists(busy))
                      .values_list("destination", flat=True).distinct()))


def destination_state(destination: str) -> DestinationState | None:
    row = OutboundDestination.objects.filter(destination=destination).first()
    queued = OutboundItem.objects.filter(destination=destination).count()
    if row is None:
        return None if not queued else DestinationState(destination, 0, 0, 0, None, "", queued)
    return DestinationState(destination, row.retry_at_ts, row.backoff_ms, row.failures,
                            row.last_success_ts, row.last_error, queued)


def leases_with_prefix(prefix: str) -> list[tuple[str, str]]:
    """(destination, owner) of the leases whose owner starts with `prefix` (this host)."""
    return list(OutboundDestination.objects.filter(lease_owner__startswith=prefix)
                .values_list("destination", "lease_owner"))
