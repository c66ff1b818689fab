"""Client transaction ids (models.stream.ClientTxn) as /sync echoes them to the sending device."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from homeserver.models import ClientTxn


def txn_ids_for(user_id: str, device_id: str, event_ids: Iterable[str]) -> dict[str, str]:
    ids = list(event_ids)
    if not ids:
        return {}
    return dict(
        ClientTxn.objects.filter(
            user_id=user_id, device_id=device_id, event_id__in=ids
        ).values_list("event_id", "txn_id")
    )


def txn_event(user_id: str, device_id: str, path_key: str, txn_id: str) -> str | None:
    # Raw SQL, here and in record_txn: both run on every send (docs/benchmarks.md).
    with connection.cursor() as cur:
        cur.execute(
            "SELECT event_id FROM client_txns "
            "WHERE user_id = %s AND device_id = %s AND path_key = %s AND txn_id = %s",
            [user_id, device_id, path_key, txn_id],
        )
        row = cur.fetchone()
    return row[0] if row else None


def record_txn(
    user_id: str, device_id: str, path_key: str, txn_id: str, event_id: str, ts: int
) -> None:
    with connection.cursor() as cur:  # a duplicate raises IntegrityError, as create() did
        cur.execute(
            "INSERT INTO client_txns (user_id, device_id, path_key, txn_id, event_id, created_ts) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [user_id, device_id, path_key, txn_id, event_id, ts],
        )
