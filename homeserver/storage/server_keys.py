"""Remote servers' verify keys (models.federation.ServerKey)."""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.models import ServerKey


@dataclass(frozen=True, slots=True)
class StoredKey:
    server_name: str
    key_id: str
    verify_key: str
    valid_until_ts: int
    expired_ts: int | None
    key_json: str


_COLS = ("server_name", "key_id", "verify_key", "valid_until_ts", "expired_ts", "key_json")


def get_key(server_name: str, key_id: str) -> StoredKey | None:
    row = ServerKey.objects.filter(server_name=server_name, key_id=key_id).values_list(*_COLS)
    first = row.first()
    return StoredKey(*first) if first else None


def keys_for(server_name: str) -> list[StoredKey]:
    return [StoredKey(*r) for r in
            ServerKey.objects.filter(server_name=server_name).values_list(*_COLS)]


def store_key(key: StoredKey, fetched_ts: int) -> None:
    """Keep the copy with the later valid_until_ts (a stale notary answer never wins)."""
    current = get_key(key.server_name, key.key_id)
    if current is not None and current.valid_until_ts >= key.valid_until_ts and (
        current.expired_ts == key.expired_ts
    ):
        return
    ServerKey.objects.update_or_create(
        server_name=key.server_name, key_id=key.key_id,
        defaults={"verify_key": key.verify_key, "valid_until_ts": key.valid_until_ts,
                  "expired_ts": key.expired_ts, "fetched_ts": fetched_ts,
                  "key_json": key.key_json},
    )
