"""Send-to-device messaging: PUT /sendToDevice and the /sync `to_device` section.

Spec: client-server API "Send-to-Device messaging" (to_device.yaml): one message per device per
transaction, `*` means every device of the user; messages wait for the device, are listed in
arrival order in /sync, at most MAX_PER_SYNC per response (the spec's recommendation), and are
deleted once the device syncs again with the `next_batch` of the response that carried them.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import IntegrityError, transaction

from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts.sessions import now_ms
from homeserver.services.e2ee import remote
from homeserver.services.e2ee.device_keys import split_users
from homeserver.storage import e2ee_keys as key_store
from homeserver.storage import e2ee_to_device as store
from homeserver.storage import txns
from homeserver.storage.stream import next_stream_positions

MAX_PER_SYNC = 100
ALL_DEVICES = "*"


def _check(event_type: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if not event_type or len(event_type.encode()) > 255:
        raise MatrixError(400, Errcode.INVALID_PARAM, "Event type must be 1-255 bytes")
    if "messages" not in body:
        raise MatrixError(400, Errcode.MISSING_PARAM, "messages is required")
    local, by_server = split_users(body["messages"], "messages")
    for devices in [*local.values(), *(d for s in by_server.values() for d in s.values())]:
        if not isinstance(devices, dict) or not all(isinstance(c, dict) for c in devices.values()):
            raise MatrixError(400, Errcode.BAD_JSON,
                              "messages must map user IDs to device IDs to content objects")
    return local, by_server


def _expand(local: dict[str, dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(user, device, content) per existing local device; `*` covers the devices not named."""
    devices = key_store.devices_of(local)
    out = []
    for user_id, by_device in local.items():
        known = devices.get(user_id, {})
        for device_id, content in by_device.items():
            if device_id != ALL_DEVICES and device_id in known:
                out.append((user_id, device_id, content))
        if ALL_DEVICES in by_device:
            out += [(user_id, d, by_device[ALL_DEVICES]) for d in sorted(known)
                    if d not in by_device]
    return out


def do_send_to_device(sender: str, sender_device: str, event_type: str, txn_id: str,
                      body: dict[str, Any]) -> None:
    """Queue the messages; a repeated (device, event type, txnId) does nothing. Spec:
    "Transaction identifiers": scoped to the sending device and the request path."""
    if not txn_id or len(txn_id) > 255:
        raise MatrixError(400, Errcode.INVALID_PARAM, "Transaction ID must be 1-255 characters")
    local, by_server = _check(event_type, body)
    path_key = f"sendToDevice/{event_type}"
    if txns.txn_event(sender, sender_device, path_key, txn_id) is not None:
        return
    try:
        with transaction.atomic():
            # First: a concurrent duplicate blocks here and then fails the unique constraint.
            txns.record_txn(sender, sender_device, path_key, txn_id, "", now_ms())
            messages = _expand(local)
            if messages:
                position = next_stream_positions(1)
                store.add_messages(sender, event_type, position, messages)
                notify_after_commit(position, user_ids={u for u, _, _ in messages})
            if by_server:
                message_id = secrets.token_urlsafe(12)
                transaction.on_commit(lambda: remote.backend.send_to_device(
                    sender, event_type, message_id, by_server))
    except IntegrityError:
        if txns.txn_event(sender, sender_device, path_key, txn_id) is None:
            raise


def sync_to_device(user_id: str, device_id: str, since: int | None,
                   upto: int) -> list[dict[str, Any]]:
    """Acknowledge what the device has seen (everything delivered in a response at or before
    `since`) and return the next pending messages, oldest first."""
    if not device_id or not store.has_messages(user_id, device_id):
        return []
    with transaction.atomic():
        if since is not None:
            store.acknowledge(user_id, device_id, since)
        pending = store.take_pending(user_id, device_id, upto, MAX_PER_SYNC)
    return [{"sender": m.sender, "type": m.type, "content": m.content} for m in pending]
