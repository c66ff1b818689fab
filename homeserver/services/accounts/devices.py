"""Device management. Spec: client-server API "Device management" (GET /devices,
GET/PUT/DELETE /devices/{deviceId}, POST /delete_devices); deletion uses user-interactive auth
and takes the device's tokens with it."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts import uia
from homeserver.services.accounts.sessions import check_device_name, remove_devices
from homeserver.storage import accounts as store
from homeserver.storage.accounts import DeviceRecord


def _render(d: DeviceRecord) -> dict[str, Any]:
    # Absent values are rendered as null rather than omitted: the spec allows either, and
    # deployed clients (matrix-nio) require the keys.
    return {
        "device_id": d.device_id,
        "display_name": d.display_name or None,
        "last_seen_ip": d.last_seen_ip or None,
        "last_seen_ts": d.last_seen_ts,
    }


def list_devices(user_id: str) -> dict[str, Any]:
    return {"devices": [_render(d) for d in store.list_devices(user_id)]}


def get_device(user_id: str, device_id: str) -> dict[str, Any]:
    d = store.get_device(user_id, device_id)
    if d is None:
        raise MatrixError(404, Errcode.NOT_FOUND, "Device not found")
    return _render(d)


def do_update_device(user_id: str, device_id: str, body: dict[str, Any]) -> None:
    if "display_name" not in body:
        return
    name = check_device_name(body["display_name"])
    from homeserver.services.e2ee.device_lists import mark_device_list_change
    from homeserver.services.federation.edus_out import send_device_list_updates

    with transaction.atomic():
        if not store.set_device_display_name(user_id, device_id, name):
            raise MatrixError(404, Errcode.NOT_FOUND, "Device not found")
        # Spec: server-server "Device Management": a new display name is a device-list change.
        mark_device_list_change(user_id)
        send_device_list_updates(user_id, [device_id])


def check_device_list(devices: Any) -> list[str]:
    if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
        raise MatrixError(400, Errcode.BAD_JSON, "devices must be a list of device IDs")
    if len(devices) > 1000:
        raise MatrixError(400, Errcode.INVALID_PARAM, "At most 1000 devices per request")
    return devices


def do_delete_devices(
    user_id: str, device_ids: list[str], auth: Any, *, operation: str
) -> None:
    """Delete devices after the user confirms with their password. Unknown device IDs are
    ignored (deleting is idempotent)."""
    result = uia.authenticate(auth, operation=operation, flows=uia.password_flows(user_id),
                              user_id=user_id)
    with transaction.atomic():
        uia.consume(result)
        remove_devices(user_id, device_ids, reason="deleted")
