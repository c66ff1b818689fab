"""Outbound EDUs for what our users do: typing, public read receipts, presence, device-list and
cross-signing key changes. Each `send_*` is called INSIDE the transaction that writes the local
change (the outbox rows commit or roll back with it) and queues one EDU per server that has a
user joined to a room concerned; when no other server is concerned nothing is queued.

Spec: server-server API "Typing Notifications", "Receipts", "Presence" (only to servers that
share a room with the user), "Device Management" (m.device_list_update to every server sharing
a room, with `stream_id` and the previous update as `prev_id`) and "End-to-End Encryption"
(m.signing_key_update).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache

from homeserver.effects.federation_outbox import enqueue_edu
from homeserver.services.e2ee.cross_signing_query import with_signatures
from homeserver.storage import e2ee_cross_signing as cs_store
from homeserver.storage import e2ee_keys as key_store
from homeserver.storage import federation_edus as store
from homeserver.storage import federation_outbox as outbox_store

# Re-send an active user's presence at least this often (below Synapse's 30 min timeout).
PRESENCE_REFRESH_S = 25 * 60


def _remote(servers: Iterable[str]) -> list[str]:
    ours = settings.PALISADE.server_name
    return sorted(s for s in servers if s and s != ours)


def is_local(user_id: str) -> bool:
    return user_id.partition(":")[2] == settings.PALISADE.server_name


def send_typing(room_id: str, user_id: str, typing: bool) -> None:
    """Spec: m.typing {room_id, user_id, typing}."""
    destinations = _remote(outbox_store.servers_in_room(room_id))
    if destinations:
        enqueue_edu("m.typing", {"room_id": room_id, "user_id": user_id, "typing": typing},
                    destinations)


def send_read_receipt(room_id: str, user_id: str, event_id: str, ts: int,
                      thread_id: str = "") -> None:
    """Spec: m.receipt {room_id: {"m.read": {user_id: {event_ids, data: {ts, thread_id?}}}}}.
    Only public m.read receipts leave the server (m.read.private never does)."""
    destinations = _remote(outbox_store.servers_in_room(room_id))
    if not destinations:
        return
    data: dict[str, Any] = {"ts": ts}
    if thread_id:
        data["thread_id"] = thread_id
    enqueue_edu("m.receipt", {room_id: {"m.read": {user_id: {
        "event_ids": [event_id], "data": data}}}}, destinations)


def send_presence(user_id: str, content: dict[str, Any]) -> None:
    """Spec: m.presence {push: [{user_id, presence, last_active_ago, status_msg?,
    currently_active?}]}, to servers sharing a room with the user."""
    destinations = _remote(store.servers_sharing_room(user_id))
    if destinations:
        enqueue_edu("m.presence", {"push": [{"user_id": user_id, **content}]}, destinations)
    # Also when nobody listens: the refresh then asks again only every PRESENCE_REFRESH_S.
    cache.set(_presence_sent_key(user_id), 1, PRESENCE_REFRESH_S)


def refresh_presence(user_id: str, content: Callable[[], dict[str, Any]]) -> None:
    """Re-send an active user's unchanged presence when none was sent for PRESENCE_REFRESH_S:
    receiving servers expire remote presence they stop hearing about (Synapse after 30 min).
    Costs one cache read; called at most once a minute per user (presence.bump_for_sync)."""
    if cache.get(_presence_sent_key(user_id)) is None:
        send_presence(user_id, content())


def _presence_sent_key(user_id: str) -> str:
    return f"palisade:presence:federated:{user_id}"


def send_device_list_updates(user_id: str, device_ids: Iterable[str]) -> None:
    """One m.device_list_update per device. Each local user has their own stream of update ids
    (1, 2, 3, ...); each update names the one before it as prev_id (spec: prev_id lists the
    updates not yet referenced; we emit in series, so there is one). A device that no longer
    exists is sent as `deleted`."""
    if not is_local(user_id):
        return
    device_ids = sorted(set(device_ids))
    if not device_ids:
        return
    # The stream advances even when nobody listens, so GET /user/devices stays consistent.
    prev = store.take_outbound_stream_ids(user_id, len(device_ids))
    destinations = _remote(store.servers_sharing_room(user_id))
    if not destinations:
        return
    names = key_store.devices_of([user_id]).get(user_id, {})
    keys = key_store.device_keys_for([user_id]).get(user_id, {})
    sigs = _self_signatures(user_id, device_ids)
    for i, device_id in enumerate(device_ids, start=1):
        content: dict[str, Any] = {"user_id": user_id, "device_id": device_id,
                                   "stream_id": prev + i,
                                   "prev_id": [prev + i - 1] if prev + i > 1 else []}
        if device_id not in names:
            content["deleted"] = True
        else:
            if names[device_id]:
                content["device_display_name"] = names[device_id]
            if device_id in keys:
                content["keys"] = with_signatures(keys[device_id].keys, sigs.get(device_id, {}))
        enqueue_edu("m.device_list_update", content, destinations)


def send_signing_key_update(user_id: str) -> None:
    """Spec: m.signing_key_update {user_id, master_key?, self_signing_key?} (the user-signing
    key stays private to its owner)."""
    if not is_local(user_id):
        return
    destinations = _remote(store.servers_sharing_room(user_id))
    if not destinations:
        return
    keys = cs_store.cross_signing_keys([user_id]).get(user_id, {})
    content: dict[str, Any] = {"user_id": user_id}
    if cs_store.MASTER in keys:
        master = keys[cs_store.MASTER]
        content["master_key"] = with_signatures(
            master.key, _self_signatures(user_id, [master.public_key]).get(master.public_key, {}))
    if cs_store.SELF_SIGNING in keys:
        content["self_signing_key"] = keys[cs_store.SELF_SIGNING].key
    if len(content) > 1:
        enqueue_edu("m.signing_key_update", content, destinations)


def _self_signatures(user_id: str, key_ids: Iterable[str]) -> dict[str, dict[str, dict]]:
    """key id -> {signer: {signer key id: signature}} of the signatures the user made on their
    own keys (the ones every server may see)."""
    out: dict[str, dict[str, dict]] = {}
    for s in cs_store.signatures_on([(user_id, k) for k in key_ids]):
        if s.signer_user_id == user_id:
            out.setdefault(s.target_key_id, {}).setdefault(s.signer_user_id, {})[
                s.signer_key_id] = s.signature
    return out
