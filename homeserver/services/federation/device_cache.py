"""The cache of other servers' users' device lists and cross-signing keys.

Spec: server-server API "Device Management": a server populates its cache of a remote user's
devices with a full fetch (GET /user/devices/{userId}, whose `stream_id` starts the sequence),
then applies each m.device_list_update EDU whose `prev_id`s it has seen; an EDU naming a prev_id
it has not seen means it missed updates and must fetch the whole list again. We only cache users
who share a room with one of our users (only for them do updates keep arriving); the list is
marked stale on a gap and fetched again by the next /keys/query that needs it.

Every change to a cached (or uncached but room-sharing) remote user's devices is also a
device-list change for our clients (services.e2ee.device_lists), so their /sync reports the
user in device_lists.changed and they query the keys again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction

from homeserver.protocol.errors import MatrixError
from homeserver.services.e2ee import key_format as fmt
from homeserver.services.e2ee.device_lists import mark_device_list_change
from homeserver.services.federation import client
from homeserver.storage import federation_edus as store
from homeserver.storage import state as state_store
from homeserver.storage.e2ee_cross_signing import MASTER, SELF_SIGNING
from homeserver.storage.federation_edus import CachedDevice, CachedDeviceList

logger = logging.getLogger(__name__)

MAX_DEVICES = 1000
CROSS_SIGNING_FIELDS = {MASTER: "master_key", SELF_SIGNING: "self_signing_key"}


class BadDeviceData(Exception):
    pass


def now_ms() -> int:
    return int(time.time() * 1000)


def check_remote_device_keys(user_id: str, device_id: str, keys: Any) -> dict[str, Any]:
    """A remote DeviceKeys object: it must name the user and device and be signed by the
    device's own key (spec client-server "Downloading keys": clients check this too)."""
    try:
        _, stored = fmt.check_device_keys(keys, user_id, device_id)
    except MatrixError as e:
        raise BadDeviceData(f"device keys of {user_id}/{device_id}: {e.error}") from None
    return stored


def check_remote_cross_signing(user_id: str, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """master_key / self_signing_key of a remote answer or m.signing_key_update."""
    out = {}
    for key_type, name in CROSS_SIGNING_FIELDS.items():
        if body.get(name) is None:
            continue
        try:
            _, obj = fmt.check_cross_signing_key(body[name], user_id, key_type, name)
        except MatrixError as e:
            raise BadDeviceData(f"{name} of {user_id}: {e.error}") from None
        out[key_type] = obj
    return out


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadDeviceData(f"{what} must be an integer")
    return value


# --- applying EDUs (called by services.federation.edus, origin already checked) ---------------


def apply_device_list_update(user_id: str, content: dict[str, Any]) -> None:
    """Spec: m.device_list_update {user_id, device_id, stream_id, prev_id?, deleted?, keys?,
    device_display_name?}."""
    device_id = content.get("device_id")
    if not isinstance(device_id, str) or not device_id:
        raise BadDeviceData("device_id must be a non-empty string")
    stream_id = _int(content.get("stream_id"), "stream_id")
    prev_ids = content.get("prev_id") or []
    if not isinstance(prev_ids, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in prev_ids):
        raise BadDeviceData("prev_id must be a list of integers")
    deleted = content.get("deleted") is True
    name = content.get("device_display_name")
    keys = None
    if not deleted and content.get("keys") is not None:
        keys = check_remote_device_keys(user_id, device_id, content["keys"])
    with transaction.atomic():
        head = store.lock_device_list(user_id)
        if head is not None:
            extremity, stale = head
            if not stale and stream_id <= extremity:
                return  # seen it already
            # Spec: apply only when every prev_id is known; an empty prev_id says nothing
            # about what came before, so it cannot be applied to a list we hold either.
            if not stale and prev_ids and all(p <= extremity for p in prev_ids):
                if deleted:
                    store.delete_device(user_id, device_id)
                else:
                    store.put_device(user_id, CachedDevice(
                        device_id, name if isinstance(name, str) else None, keys))
                store.set_head(user_id, stream_id, False, now_ms())
            else:
                store.set_head(user_id, extremity, True, now_ms())
        mark_device_list_change(user_id)


def apply_signing_key_update(user_id: str, content: dict[str, Any]) -> None:
    """Spec: m.signing_key_update {user_id, master_key?, self_signing_key?}."""
    keys = check_remote_cross_signing(user_id, content)
    if not keys:
        raise BadDeviceData("no master_key or self_signing_key")
    with transaction.atomic():
        if store.lock_device_list(user_id) is not None:
            for key_type, obj in keys.items():
                store.put_cross_signing_key(user_id, key_type, obj)
        mark_device_list_change(user_id)


# --- full fetches -------------------------------------------------------------------------------


def parse_user_devices(user_id: str, body: Any) -> CachedDeviceList:
    """Spec: GET /user/devices response {user_id, stream_id, devices: [{device_id, keys?,
    device_display_name?}], master_key?, self_signing_key?}. Devices with bad keys are left
    out (their server sent something no client could trust)."""
    if not isinstance(body, dict) or body.get("user_id") != user_id:
        raise BadDeviceData("answer is not about the requested user")
    stream_id = _int(body.get("stream_id"), "stream_id")
    devices = body.get("devices")
    if not isinstance(devices, list):
        raise BadDeviceData("devices must be a list")
    out: dict[str, CachedDevice] = {}
    for d in devices[:MAX_DEVICES]:
        if not isinstance(d, dict) or not isinstance(d.get("device_id"), str):
            continue
        device_id = d["device_id"]
        try:
            keys = (check_remote_device_keys(user_id, device_id, d["keys"])
                    if d.get("keys") else None)
        except BadDeviceData as e:
            logger.info("leaving out a device: %s", e)
            continue
        name = d.get("device_display_name")
        out[device_id] = CachedDevice(device_id, name if isinstance(name, str) else None, keys)
    cross = check_remote_cross_signing(user_id, body)
    return CachedDeviceList(user_id, stream_id, False, out, cross)


def _store_fetched(fetched: CachedDeviceList) -> None:
    with transaction.atomic():
        had = store.lock_device_list(fetched.user_id)
        if not state_store.rooms_for_user(fetched.user_id):
            # Nobody here shares a room: updates will not arrive, do not keep a copy.
            if had is not None:
                store.forget_device_lists([fetched.user_id])
            return
        if had is not None and not had[1] and had[0] > fetched.stream_id:
            return  # an update newer than this answer was applied meanwhile
        store.replace_device_list(fetched.user_id, fetched.stream_id,
                                  fetched.devices.values(), fetched.cross_signing, now_ms())
        if had is not None and had[1]:
            mark_device_list_change(fetched.user_id)


async def fetch_device_list(server: str, user_id: str, timeout: float | None) -> CachedDeviceList:
    """GET /_matrix/federation/v1/user/devices/{userId}; caches the answer when someone here
    shares a room with the user. Raises client.FederationError / BadDeviceData."""
    body = await client.request(
        "GET", server, "/_matrix/federation/v1/user/devices/" + client.path_of(user_id),
        timeout=timeout)
    fetched = parse_user_devices(user_id, body)
    await sync_to_async(_store_fetched)(fetched)
    return fetched


def cached_lists(user_ids: list[str]) -> dict[str, CachedDeviceList]:
    """Fresh cached lists of these users (stale ones are left out: they need a fetch)."""
    return {u: c for u, c in store.cached_device_lists(user_ids).items() if not c.stale}


def forget_unshared(user_ids: list[str]) -> None:
    """Drop cached lists of users who no longer share a room here: updates about them stop
    arriving, so the copy would go stale unnoticed."""
    store.forget_device_lists(user_ids)


def shares_room_here(user_ids: list[str]) -> set[str]:
    """The remote users joined to a room here (every room here has one of our users)."""
    return store.users_in_any_room(user_ids)
