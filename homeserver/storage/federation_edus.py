"""Federation EDU state (models.federation_edus): the remote device-list cache, our own
device-list stream ids, inbound to-device deduplication, and the "which servers share a room
with this user" queries that decide where EDUs go."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from homeserver.models import (
    CurrentState,
    DeviceListOutbound,
    InboundToDevice,
    RemoteCrossSigningKey,
    RemoteDevice,
    RemoteDeviceList,
)
from homeserver.storage.e2ee_keys import dump, load


def _server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1] if ":" in user_id else ""


# --- who shares a room -------------------------------------------------------------------------


def _joined_rooms(user_id: str):
    return CurrentState.objects.filter(
        type="m.room.member", state_key=user_id, membership="join"
    ).values("room_id")


def servers_sharing_room(user_id: str) -> set[str]:
    """Servers with a user joined to a room `user_id` is joined to (including ours). One query."""
    members = CurrentState.objects.filter(
        type="m.room.member", membership="join", room_id__in=_joined_rooms(user_id)
    ).values_list("state_key", flat=True).distinct()
    return {_server_of(u) for u in members}


def server_joined_to(room_id: str, server: str) -> bool:
    """Whether a user of `server` is joined to the room."""
    return CurrentState.objects.filter(
        room_id=room_id, type="m.room.member", membership="join",
        state_key__endswith=":" + server,
    ).exists()


def users_in_any_room(user_ids: Iterable[str]) -> set[str]:
    """Those of these users who are joined to at least one room this server holds. One query."""
    return set(CurrentState.objects.filter(
        type="m.room.member", membership="join", state_key__in=list(user_ids),
    ).values_list("state_key", flat=True).distinct())


def is_joined(room_id: str, user_id: str) -> bool:
    return CurrentState.objects.filter(
        room_id=room_id, type="m.room.member", membership="join", state_key=user_id
    ).exists()


def shares_room_with_server(user_id: str, server: str) -> bool:
    """Whether a user of `server` is joined to a room `user_id` is joined to."""
    return CurrentState.objects.filter(
        type="m.room.member", membership="join", room_id__in=_joined_rooms(user_id),
        state_key__endswith=":" + server,
    ).exists()


# --- the remote device-list cache -------------------------------------------------------------


@dataclass(frozen=True)
class CachedDevice:
    device_id: str
    display_name: str | None
    keys: dict[str, Any] | None


@dataclass(frozen=True)
class CachedDeviceList:
    user_id: str
    stream_id: int
    stale: bool
    devices: dict[str, CachedDevice]
    cross_signing: dict[str, dict[str, Any]]  # key type -> CrossSigningKey object


def device_list_heads(user_ids: Iterable[str]) -> dict[str, tuple[int, bool]]:
    """user_id -> (stream_id, stale) of the users whose list is cached."""
    return {u: (s, st) for u, s, st in RemoteDeviceList.objects.filter(
        user_id__in=list(user_ids)).values_list("user_id", "stream_id", "stale")}


def lock_device_list(user_id: str) -> tuple[int, bool] | None:
    row = (RemoteDeviceList.objects.select_for_update().filter(user_id=user_id)
           .values_list("stream_id", "stale").first())
    return (row[0], row[1]) if row else None


def cached_device_lists(user_ids: Iterable[str]) -> dict[str, CachedDeviceList]:
    heads = device_list_heads(user_ids)
    devices: dict[str, dict[str, CachedDevice]] = {u: {} for u in heads}
    for u, d, name, keys in RemoteDevice.objects.filter(user_id__in=list(heads)).values_list(
            "user_id", "device_id", "display_name", "keys_json"):
        devices[u][d] = CachedDevice(d, name, load(keys) if keys else None)
    cross: dict[str, dict[str, dict[str, Any]]] = {u: {} for u in heads}
    for u, t, k in RemoteCrossSigningKey.objects.filter(user_id__in=list(heads)).values_list(
            "user_id", "key_type", "key_json"):
        cross[u][t] = load(k)
    return {u: CachedDeviceList(u, s, st, devices[u], cross[u]) for u, (s, st) in heads.items()}


def replace_device_list(user_id: str, stream_id: int, devices: Iterable[CachedDevice],
                        cross_signing: dict[str, dict[str, Any]], now: int) -> None:
    """Store a complete list (from GET /user/devices), replacing whatever was cached."""
    RemoteDeviceList.objects.update_or_create(
        user_id=user_id, defaults={"stream_id": stream_id, "stale": False, "updated_ts": now})
    RemoteDevice.objects.filter(user_id=user_id).delete()
    RemoteDevice.objects.bulk_create([
        RemoteDevice(user_id=user_id, device_id=d.device_id, display_name=d.display_name,
                     keys_json=dump(d.keys) if d.keys else "") for d in devices])
    RemoteCrossSigningKey.objects.filter(user_id=user_id).delete()
    RemoteCrossSigningKey.objects.bulk_create([
        RemoteCrossSigningKey(user_id=user_id, key_type=t, key_json=dump(k))
        for t, k in cross_signing.items()])


def put_device(user_id: str, device: CachedDevice) -> None:
    RemoteDevice.objects.update_or_create(
        user_id=user_id, device_id=device.device_id,
        defaults={"display_name": device.display_name,
                  "keys_json": dump(device.keys) if device.keys else ""})


def delete_device(user_id: str, device_id: str) -> None:
    RemoteDevice.objects.filter(user_id=user_id, device_id=device_id).delete()


def set_head(user_id: str, stream_id: int, stale: bool, now: int) -> None:
    RemoteDeviceList.objects.filter(user_id=user_id).update(
        stream_id=stream_id, stale=stale, updated_ts=now)


def put_cross_signing_key(user_id: str, key_type: str, key: dict[str, Any]) -> None:
    RemoteCrossSigningKey.objects.update_or_create(
        user_id=user_id, key_type=key_type, defaults={"key_json": dump(key)})


def forget_device_lists(user_ids: Iterable[str]) -> None:
    ids = list(user_ids)
    RemoteDevice.objects.filter(user_id__in=ids).delete()
    RemoteCrossSigningKey.objects.filter(user_id__in=ids).delete()
    RemoteDeviceList.objects.filter(user_id__in=ids).delete()


# --- our own device-list stream ---------------------------------------------------------------


def outbound_stream_id(user_id: str) -> int | None:
    return DeviceListOutbound.objects.filter(user_id=user_id).values_list(
        "stream_id", flat=True).first()


def take_outbound_stream_ids(user_id: str, n: int) -> int:
    """Reserve the user's next `n` device-list stream ids (prev+1 .. prev+n); returns prev (0
    before the first). Locks the row for the caller's transaction."""
    row = (DeviceListOutbound.objects.select_for_update().filter(user_id=user_id)
           .values_list("stream_id", flat=True).first())
    if row is None:
        DeviceListOutbound.objects.create(user_id=user_id, stream_id=n)
        return 0
    DeviceListOutbound.objects.filter(user_id=user_id).update(stream_id=row + n)
    return row


# --- inbound to-device deduplication ------------------------------------------------------------


def claim_message_id(origin: str, message_id: str, now: int) -> bool:
    """True the first time (origin, message_id) is seen."""
    try:
        with transaction.atomic():
            InboundToDevice.objects.create(origin=origin, message_id=message_id, received_ts=now)
    except IntegrityError:
        return False
    return True


def prune_message_ids(before_ts: int) -> int:
    deleted, _ = InboundToDevice.objects.filter(received_ts__lt=before_ts).delete()
    return deleted
