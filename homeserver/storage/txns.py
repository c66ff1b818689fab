"""Client transaction ids (models.stream.ClientTxn) as /sync echoes them to the sending device."""

from __future__ import annotations

from collections.abc import Iterable

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
    return (
        ClientTxn.objects.filter(
            user_id=user_id, device_id=device_id, path_key=path_key, txn_id=txn_id
        )
        .values_list("event_id", flat=True)
        .first()
    )


def record_txn(
    user_id: str, device_id: str, path_key: str, txn_id: str, event_id: str, ts: int
) -> None:
    ClientTxn.objects.create(
        user_id=user_id,
        device_id=device_id,
        path_key=path_key,
        txn_id=txn_id,
        event_id=event_id,
        created_ts=ts,
    )
