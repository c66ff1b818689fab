"""Device identity keys, one-time keys and fallback keys (models.e2ee).

Spec: client-server API "One-time and fallback keys": each one-time key is handed out at most
once; `claim_one_time_key` deletes and returns it in a single statement, so two concurrent
claimers can never receive the same key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection
from django.db.models import Count

from homeserver.models import Device, DeviceKeys, FallbackKey, OneTimeKey
from homeserver.protocol.canonical_json import encode_canonical_json


def dump(obj: Any) -> str:
    return encode_canonical_json(obj).decode("utf-8")


def load(text: str) -> Any:
    return orjson.loads(text)


@dataclass(frozen=True)
class StoredDeviceKeys:
    user_id: str
    device_id: str
    ed25519_key: str
    keys: dict[str, Any]  # the DeviceKeys object as uploaded, without `unsigned`


def devices_of(user_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """user_id -> device_id -> display name ("" = none) of every device these users have."""
    out: dict[str, dict[str, str]] = {}
    rows = Device.objects.filter(user_id__in=list(user_ids)).values_list(
        "user_id", "device_id", "display_name"
    )
    for user_id, device_id, name in rows:
        out.setdefault(user_id, {})[device_id] = name
    return out


# --- device keys ----------------------------------------------------------------------------


def get_device_keys(user_id: str, device_id: str) -> StoredDeviceKeys | None:
    row = (
        DeviceKeys.objects.filter(user_id=user_id, device_id=device_id)
        .values_list("ed25519_key", "key_json")
        .first()
    )
    return StoredDeviceKeys(user_id, device_id, row[0], load(row[1])) if row else None


def device_keys_for(user_ids: Iterable[str]) -> dict[str, dict[str, StoredDeviceKeys]]:
    """user_id -> device_id -> keys, for every device of these users that uploaded keys."""
    out: dict[str, dict[str, StoredDeviceKeys]] = {}
    rows = DeviceKeys.objects.filter(user_id__in=list(user_ids)).values_list(
        "user_id", "device_id", "ed25519_key", "key_json"
    )
    for user_id, device_id, ed, text in rows:
        out.setdefault(user_id, {})[device_id] = StoredDeviceKeys(user_id, device_id, ed,
                                                                  load(text))
    return out


def put_device_keys(user_id: str, device_id: str, ed25519_key: str, keys: dict[str, Any],
                    now: int) -> None:
    DeviceKeys.objects.update_or_create(
        user_id=user_id, device_id=device_id,
        defaults={"ed25519_key": ed25519_key, "key_json": dump(keys), "updated_ts": now},
    )


# --- one-time keys --------------------------------------------------------------------------


def existing_one_time_keys(user_id: str, device_id: str,
                           ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """(algorithm, key_id) -> stored key, for those of `ids` the device still holds."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = OneTimeKey.objects.filter(
        user_id=user_id, device_id=device_id, key_id__in={k for _, k in wanted}
    ).values_list("algorithm", "key_id", "key_json")
    return {(a, k): load(j) for a, k, j in rows if (a, k) in wanted}


def add_one_time_keys(user_id: str, device_id: str,
                      keys: Iterable[tuple[str, str, Any]]) -> None:
    """Insert (algorithm, key_id, key) rows; their ids record the upload order."""
    OneTimeKey.objects.bulk_create([
        OneTimeKey(user_id=user_id, device_id=device_id, algorithm=a, key_id=k, key_json=dump(v))
        for a, k, v in keys
    ])


def one_time_key_counts(user_id: str, device_id: str) -> dict[str, int]:
    rows = (
        OneTimeKey.objects.filter(user_id=user_id, device_id=device_id)
        .values("algorithm")
        .annotate(n=Count("id"))
        .values_list("algorithm", "n")
    )
    return dict(rows)


_CLAIM_SQL = (
    "DELETE FROM e2e_one_time_keys WHERE id = ("
    " SELECT id FROM e2e_one_time_keys"
    " WHERE user_id = %s AND device_id = %s AND algorithm = %s"
    " ORDER BY id LIMIT 1{lock}"
    ") RETURNING key_id, key_json"
)


def claim_one_time_key(user_id: str, device_id: str, algorithm: str) -> tuple[str, Any] | None:
    """Remove and return the device's oldest one-time key of `algorithm` (key_id, key).

    One statement: on PostgreSQL the row is picked with FOR UPDATE SKIP LOCKED, so a concurrent
    claimer takes the next key instead of waiting for (and then missing) this one; on SQLite
    writers are serialised by the database lock."""
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cur:
        cur.execute(_CLAIM_SQL.format(lock=lock), [user_id, device_id, algorithm])
        row = cur.fetchone()
    return (row[0], load(row[1])) if row else None


# --- fallback keys --------------------------------------------------------------------------


def get_fallback_key(user_id: str, device_id: str, algorithm: str) -> tuple[str, Any, bool] | None:
    row = (
        FallbackKey.objects.filter(user_id=user_id, device_id=device_id, algorithm=algorithm)
        .values_list("key_id", "key_json", "used")
        .first()
    )
    return (row[0], load(row[1]), row[2]) if row else None


def put_fallback_key(user_id: str, device_id: str, algorithm: str, key_id: str,
                     key: Any) -> None:
    """Replace the device's fallback key for `algorithm`; re-uploading the same key keeps its
    `used` flag (a retried upload must not make a used key look fresh)."""
    text = dump(key)
    current = get_fallback_key(user_id, device_id, algorithm)
    if current is not None and current[0] == key_id and dump(current[1]) == text:
        return
    FallbackKey.objects.update_or_create(
        user_id=user_id, device_id=device_id, algorithm=algorithm,
        defaults={"key_id": key_id, "key_json": text, "used": False},
    )


def claim_fallback_key(user_id: str, device_id: str, algorithm: str) -> tuple[str, Any] | None:
    """The device's fallback key of `algorithm`, marked used (it stays claimable)."""
    row = (
        FallbackKey.objects.filter(user_id=user_id, device_id=device_id, algorithm=algorithm)
        .values_list("id", "key_id", "key_json", "used")
        .first()
    )
    if row is None:
        return None
    if not row[3]:
        FallbackKey.objects.filter(id=row[0]).update(used=True)
    return row[1], load(row[2])


def unused_fallback_key_types(user_id: str, device_id: str) -> list[str]:
    return sorted(
        FallbackKey.objects.filter(user_id=user_id, device_id=device_id, used=False)
        .values_list("algorithm", flat=True)
    )


def delete_device_keys(user_id: str, device_ids: list[str]) -> None:
    """Everything end-to-end a removed device had published."""
    for model in (DeviceKeys, OneTimeKey, FallbackKey):
        model.objects.filter(user_id=user_id, device_id__in=device_ids).delete()
