"""Inbound EDUs: what other servers tell us about their users outside the room DAG.

Spec: server-server API "Transactions" (EDUs ride in /send), "Typing Notifications",
"Presence", "Receipts", "Device Management" (m.device_list_update), "End-to-End Encryption"
(m.signing_key_update) and "Send-to-device messaging" (m.direct_to_device).

`handle_edu(origin, edu)` is called by the /send view for each EDU of an authenticated
transaction, outside any transaction; each EDU is applied in its own transaction. An EDU that is
malformed, or in which a server speaks for a user of another server, or about a room none of its
users is joined to, is dropped with a log line: it never fails the transaction (spec: EDUs have
no error reporting). What survives goes into the same stores local changes go into, so local
clients see it in /sync.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.identifiers import InvalidIdentifier, RoomID, UserID
from homeserver.services.federation import device_cache
from homeserver.storage import e2ee_keys as key_store
from homeserver.storage import e2ee_to_device as to_device_store
from homeserver.storage import federation_edus as store
from homeserver.storage import presence as presence_store
from homeserver.storage import receipts as receipt_store
from homeserver.storage import state as state_store
from homeserver.storage import typing as typing_store
from homeserver.storage.stream import next_stream_positions

logger = logging.getLogger(__name__)

# How long a remote typing notification lasts without a refresh (remote servers do not send the
# client's timeout; Synapse uses the same 30 s).
REMOTE_TYPING_TIMEOUT_MS = 30_000
MAX_TO_DEVICE_RECIPIENTS = 10_000
ALL_DEVICES = "*"
TO_DEVICE_DEDUP_MS = 7 * 86_400_000
PRUNE_CHANCE = 0.01


class Dropped(Exception):
    """The EDU (or one part of it) is ignored; the message says why."""


def now_ms() -> int:
    return int(time.time() * 1000)


def _user_of(origin: str, user_id: Any) -> str:
    """A user ID of `origin` (spec: a server may only send EDUs about its own users)."""
    if not isinstance(user_id, str):
        raise Dropped(f"user_id {user_id!r} is not a string")
    try:
        parsed = UserID.parse_historical(user_id)
    except InvalidIdentifier:
        raise Dropped(f"{user_id!r} is not a user ID") from None
    if str(parsed.server_name) != origin:
        raise Dropped(f"{origin} may not speak for {user_id}")
    return user_id


def _room(room_id: Any, origin: str) -> str:
    if not isinstance(room_id, str):
        raise Dropped(f"room_id {room_id!r} is not a string")
    try:
        RoomID.parse(room_id)
    except InvalidIdentifier:
        raise Dropped(f"{room_id!r} is not a room ID") from None
    if not store.server_joined_to(room_id, origin):
        raise Dropped(f"{origin} has no user joined to {room_id}")
    return room_id


def _is_local(user_id: str) -> bool:
    return user_id.partition(":")[2] == settings.PALISADE.server_name


# --- m.typing -----------------------------------------------------------------------------------


def on_typing(origin: str, content: dict[str, Any]) -> None:
    """Spec "Typing Notifications": receiving servers verify the user is in the room and
    belongs to the sending server."""
    user_id = _user_of(origin, content.get("user_id"))
    room_id = _room(content.get("room_id"), origin)
    typing = content.get("typing")
    if not isinstance(typing, bool):
        raise Dropped("typing must be a boolean")
    if not store.is_joined(room_id, user_id):
        raise Dropped(f"{user_id} is not joined to {room_id}")
    now = now_ms()
    expires = now + REMOTE_TYPING_TIMEOUT_MS if typing else 0
    with transaction.atomic():
        row = typing_store.get_typing(room_id, user_id)
        was_typing = row is not None and row.expires_ts > now
        if typing and was_typing:
            typing_store.put_typing(room_id, user_id, expires, None)
        elif typing or was_typing or (row is not None and row.expires_ts):
            position = next_stream_positions(1)
            typing_store.put_typing(room_id, user_id, expires, position)
            notify_after_commit(position, room_ids=[room_id])


# --- m.receipt ----------------------------------------------------------------------------------


def on_receipt(origin: str, content: dict[str, Any]) -> None:
    """Spec "Receipts": {room_id: {"m.read": {user_id: {event_ids, data: {ts, thread_id?}}}}}.
    Only public read receipts travel over federation; each valid (room, user) is applied on its
    own, the rest of the EDU is not spoiled by one bad entry."""
    for room_id, by_type in content.items():
        try:
            room_id = _room(room_id, origin)
            if not isinstance(by_type, dict):
                raise Dropped("receipts of a room must be an object")
            reads = by_type.get("m.read")
            if not isinstance(reads, dict):
                raise Dropped("no m.read receipts")
            for user_id, receipt in reads.items():
                try:
                    _apply_receipt(origin, room_id, user_id, receipt)
                except Dropped as e:
                    logger.info("dropping a receipt from %s in %s: %s", origin, room_id, e)
        except Dropped as e:
            logger.info("dropping receipts from %s: %s", origin, e)


def _apply_receipt(origin: str, room_id: str, user_id: Any, receipt: Any) -> None:
    user_id = _user_of(origin, user_id)
    if not isinstance(receipt, dict) or not isinstance(receipt.get("event_ids"), list):
        raise Dropped("a receipt needs event_ids")
    data = receipt.get("data") if isinstance(receipt.get("data"), dict) else {}
    thread_id = data.get("thread_id", "")
    if not isinstance(thread_id, str):
        raise Dropped("thread_id must be a string")
    ts = data.get("ts") if isinstance(data.get("ts"), int) else now_ms()
    if not store.is_joined(room_id, user_id):
        raise Dropped(f"{user_id} is not joined to {room_id}")
    # The receipt is for the latest of the listed events we know (unknown ones are skipped:
    # a receipt must point into the room's timeline).
    known = [(p, e) for e in receipt["event_ids"][:50] if isinstance(e, str)
             and (p := receipt_store.event_position(room_id, e)) is not None]
    if not known:
        raise Dropped("none of the receipt's events is known here")
    event_position, event_id = max(known)
    with transaction.atomic():
        current = receipt_store.receipt_event_position(room_id, user_id, "m.read", thread_id)
        if current is not None and current >= event_position:
            return
        position = next_stream_positions(1)
        receipt_store.upsert_receipt(
            room_id=room_id, user_id=user_id, receipt_type="m.read", thread_id=thread_id,
            event_id=event_id, event_stream_ordering=event_position, ts=ts,
            stream_ordering=position)
        notify_after_commit(position, room_ids=[room_id])


# --- m.presence ---------------------------------------------------------------------------------

PRESENCE_STATES = ("online", "unavailable", "offline")


def on_presence(origin: str, content: dict[str, Any]) -> None:
    """Spec "Presence": {"push": [{user_id, presence, last_active_ago, status_msg?,
    currently_active?}]}. Kept only for users who share a room with one of our users."""
    if not settings.PALISADE.presence.enabled:
        return
    push = content.get("push")
    if not isinstance(push, list):
        raise Dropped("push must be a list")
    for update in push[:1000]:
        try:
            _apply_presence(origin, update)
        except Dropped as e:
            logger.info("dropping a presence update from %s: %s", origin, e)


def _apply_presence(origin: str, update: Any) -> None:
    if not isinstance(update, dict):
        raise Dropped("a presence update must be an object")
    user_id = _user_of(origin, update.get("user_id"))
    state = update.get("presence")
    if state not in PRESENCE_STATES:
        raise Dropped(f"unknown presence {state!r}")
    ago = update.get("last_active_ago", 0)
    if not isinstance(ago, int) or isinstance(ago, bool) or ago < 0:
        raise Dropped("last_active_ago must be a non-negative integer")
    status_msg = update.get("status_msg")
    if status_msg is not None and not isinstance(status_msg, str):
        raise Dropped("status_msg must be a string")
    rooms = state_store.rooms_for_user(user_id)
    if not rooms:
        raise Dropped(f"{user_id} shares no room with this server")
    with transaction.atomic():
        row = presence_store.get_presence(user_id, for_update=True)
        last_active = now_ms() - ago
        if row is not None and (row.state, row.status_msg) == (state, status_msg):
            presence_store.touch(user_id, max(last_active, row.last_active_ts))
            return
        position = next_stream_positions(1)
        presence_store.put_presence(user_id, state, status_msg[:1024] if status_msg else None,
                                    last_active, position)
        notify_after_commit(position, room_ids=list(rooms))


# --- m.device_list_update / m.signing_key_update ------------------------------------------------


def on_device_list_update(origin: str, content: dict[str, Any]) -> None:
    user_id = _user_of(origin, content.get("user_id"))
    if not state_store.rooms_for_user(user_id):
        raise Dropped(f"{user_id} shares no room with this server")
    device_cache.apply_device_list_update(user_id, content)


def on_signing_key_update(origin: str, content: dict[str, Any]) -> None:
    user_id = _user_of(origin, content.get("user_id"))
    if not state_store.rooms_for_user(user_id):
        raise Dropped(f"{user_id} shares no room with this server")
    device_cache.apply_signing_key_update(user_id, content)


# --- m.direct_to_device -------------------------------------------------------------------------


def on_direct_to_device(origin: str, content: dict[str, Any]) -> None:
    """Spec "Send-to-device messaging": {sender, type, message_id, messages: {user_id:
    {device_id or "*": content}}}; deliver to our users' devices, once per message_id."""
    sender = _user_of(origin, content.get("sender"))
    event_type, message_id = content.get("type"), content.get("message_id")
    messages = content.get("messages")
    if not isinstance(event_type, str) or not event_type or len(event_type.encode()) > 255:
        raise Dropped("type must be a non-empty string")
    if not isinstance(message_id, str) or not message_id or len(message_id) > 255:
        raise Dropped("message_id must be a non-empty string")
    if not isinstance(messages, dict):
        raise Dropped("messages must be an object")
    wanted = {u: d for u, d in messages.items() if isinstance(u, str) and _is_local(u)
              and isinstance(d, dict)}
    devices = key_store.devices_of(wanted)
    out: list[tuple[str, str, dict[str, Any]]] = []
    for user_id, by_device in wanted.items():
        known = devices.get(user_id, {})
        for device_id, body in by_device.items():
            if not isinstance(body, dict):
                continue
            if device_id == ALL_DEVICES:
                out += [(user_id, d, body) for d in sorted(known) if d not in by_device]
            elif device_id in known:
                out.append((user_id, device_id, body))
    if len(out) > MAX_TO_DEVICE_RECIPIENTS:
        raise Dropped("too many recipients")
    with transaction.atomic():
        if not store.claim_message_id(origin, message_id, now_ms()):
            return  # already delivered (a retried transaction)
        if random.random() < PRUNE_CHANCE:
            # Senders retry a transaction for hours, not days: old message IDs can go.
            store.prune_message_ids(now_ms() - TO_DEVICE_DEDUP_MS)
        if out:
            position = next_stream_positions(1)
            to_device_store.add_messages(sender, event_type, position, out)
            notify_after_commit(position, user_ids={u for u, _, _ in out})


# --- dispatch -----------------------------------------------------------------------------------

HANDLERS: dict[str, Callable[[str, dict[str, Any]], None]] = {
    "m.typing": on_typing,
    "m.receipt": on_receipt,
    "m.presence": on_presence,
    "m.device_list_update": on_device_list_update,
    "m.signing_key_update": on_signing_key_update,
    "m.direct_to_device": on_direct_to_device,
}


def handle_edu(origin: str, edu: dict) -> None:
    """Apply one EDU of a transaction from `origin` (already authenticated). Never raises for
    what the EDU contains: problems are logged and the EDU (or its bad part) is dropped."""
    edu_type = edu.get("edu_type") if isinstance(edu, dict) else None
    content = edu.get("content") if isinstance(edu, dict) else None
    handler = HANDLERS.get(edu_type) if isinstance(edu_type, str) else None
    if handler is None:
        logger.debug("ignoring EDU of type %r from %s", edu_type, origin)
        return
    if not isinstance(content, dict):
        logger.info("dropping %s from %s: content is not an object", edu_type, origin)
        return
    try:
        handler(origin, content)
    except (Dropped, device_cache.BadDeviceData) as e:
        logger.info("dropping %s from %s: %s", edu_type, origin, e)
    except Exception:
        logger.exception("failed to apply %s from %s", edu_type, origin)
