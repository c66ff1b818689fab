"""What end-to-end encryption does when devices come and go (hooks in accounts.sessions).

Spec: client-server API "Tracking the device list for a user": a new or removed device is a
device-list change; a removed device's keys and pending to-device messages go with it.
"""

from __future__ import annotations

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts import sessions
from homeserver.services.e2ee.device_lists import mark_device_list_change
from homeserver.storage import e2ee_cross_signing as cs_store
from homeserver.storage import e2ee_keys as key_store
from homeserver.storage import e2ee_to_device as to_device_store


def _federate(user_id: str, device_ids: list[str]) -> None:
    # Spec: server-server "Device Management": tell servers sharing a room (m.device_list_update).
    from homeserver.services.federation.edus_out import send_device_list_updates

    send_device_list_updates(user_id, device_ids)


def on_device_added(user_id: str, device_id: str) -> None:
    # Spec: "Cross-signing": servers must ensure device IDs will not collide with cross-signing
    # public keys (both are used as `ed25519:<id>` key IDs).
    keys = cs_store.cross_signing_keys([user_id]).get(user_id, {})
    if any(k.public_key == device_id for k in keys.values()):
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          "This device ID is in use as a cross-signing key")
    mark_device_list_change(user_id)
    _federate(user_id, [device_id])


def on_devices_removed(user_id: str, device_ids: list[str]) -> None:
    key_store.delete_device_keys(user_id, device_ids)
    to_device_store.delete_inboxes(user_id, device_ids)
    cs_store.delete_signatures_on(user_id, device_ids)
    mark_device_list_change(user_id)
    _federate(user_id, device_ids)


def register() -> None:
    """Called once from the app's ready()."""
    if on_device_added not in sessions.DEVICE_ADDED_HOOKS:
        sessions.DEVICE_ADDED_HOOKS.append(on_device_added)
    if on_devices_removed not in sessions.DEVICES_REMOVED_HOOKS:
        sessions.DEVICES_REMOVED_HOOKS.append(on_devices_removed)
