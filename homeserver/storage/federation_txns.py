"""Inbound /send transactions we answered (idempotency per origin and transaction id)."""

from __future__ import annotations

from typing import Any

import orjson
from django.db import IntegrityError, transaction

from homeserver.models import InboundTransaction


def get_response(origin: str, txn_id: str) -> dict[str, Any] | None:
    row = (InboundTransaction.objects.filter(origin=origin, txn_id=txn_id)
           .values_list("response_json", flat=True).first())
    return None if row is None else orjson.loads(row)


def save_response(origin: str, txn_id: str, response: dict[str, Any], now_ms: int) -> None:
    try:
        with transaction.atomic():
            InboundTransaction.objects.create(origin=origin, txn_id=txn_id, received_ts=now_ms,
                                              response_json=orjson.dumps(response).decode())
    except IntegrityError:
        pass  # a concurrent retry of the same transaction answered first
