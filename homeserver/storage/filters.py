"""Stored filters (POST /user/{userId}/filter), as canonical JSON text per user."""

from __future__ import annotations

from typing import Any

import orjson

from homeserver.models import Filter


def insert_filter(user_id: str, filter_id: str, json_text: str) -> None:
    Filter.objects.create(user_id=user_id, filter_id=filter_id, json=json_text)


def find_filter_id(user_id: str, json_text: str) -> str | None:
    """An identical filter the user already stored (clients re-upload the same one often)."""
    return (
        Filter.objects.filter(user_id=user_id, json=json_text)
        .values_list("filter_id", flat=True)
        .first()
    )


def load_filter(user_id: str, filter_id: str) -> dict[str, Any] | None:
    """The stored filter definition, or None (unknown id, or another user's)."""
    text = (
        Filter.objects.filter(user_id=user_id, filter_id=filter_id)
        .values_list("json", flat=True)
        .first()
    )
    return orjson.loads(text) if text is not None else None
