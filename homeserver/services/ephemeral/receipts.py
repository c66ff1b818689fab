"""Receipts and read markers. Spec: client-server API "Receipts" (POST
/rooms/{roomId}/receipt/{receiptType}/{eventId}, private and threaded receipts) and "Read and
unread markers" (POST /rooms/{roomId}/read_markers; m.fully_read lives in room account data,
which clients cannot write directly).

Each change takes a stream position in its transaction and wakes /sync after commit: public
receipts wake the room, private receipts and the fully-read marker only their owner. m.read and
m.read.private also move the user's read mark (storage/receipts.advance_read_mark), which is
what unread notification counts are measured from ("Marking notifications as read").
Receipts are not audited: they are frequent, ephemeral and carry no policy decision.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import transaction

from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.events.send import check_sender_in_room
from homeserver.services.federation import edus_out
from homeserver.storage import account_data as data_store
from homeserver.storage import push_actions as action_store
from homeserver.storage import receipts as receipt_store
from homeserver.storage.stream import next_stream_positions

READ_TYPES = ("m.read", "m.read.private")
FULLY_READ = "m.fully_read"
RECEIPT_TYPES = (*READ_TYPES, FULLY_READ)


def _now() -> int:
    return int(time.time() * 1000)


def check_receipt_type(receipt_type: str) -> None:
    if receipt_type not in RECEIPT_TYPES:
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          f"Receipt type must be one of {', '.join(RECEIPT_TYPES)}")


def check_thread_id(receipt_type: str, body: dict[str, Any]) -> str:
    """"" for an unthreaded receipt. Spec: 400 when thread_id is not a string, is empty, or is
    given for a receipt type that has no threads (m.fully_read)."""
    if "thread_id" not in body:
        return ""
    thread_id = body["thread_id"]
    if not isinstance(thread_id, str) or not thread_id:
        raise MatrixError(400, Errcode.INVALID_PARAM, "thread_id field must be a non-empty string")
    if receipt_type == FULLY_READ:
        raise MatrixError(400, Errcode.INVALID_PARAM, "m.fully_read markers have no thread_id")
    if thread_id != "main" and not thread_id.startswith("$"):
        raise MatrixError(400, Errcode.INVALID_PARAM, "thread_id must be 'main' or an event ID")
    return thread_id


def _event_position(room_id: str, event_id: str) -> int:
    """Spec: the event MUST belong to the room."""
    if not isinstance(event_id, str) or not event_id.startswith("$"):
        raise MatrixError(400, Errcode.INVALID_PARAM, f"{event_id!r} is not an event ID")
    position = receipt_store.event_position(room_id, event_id)
    if position is None:
        raise MatrixError(404, Errcode.NOT_FOUND, f"Event {event_id} not found in this room")
    return position


def _check_thread_relation(event_id: str, thread_id: str) -> None:
    """Spec: 400 when "the event_id is not related to the thread_id"."""
    if not thread_id:
        return
    actual = receipt_store.thread_of(event_id)
    if thread_id == "main":
        ok = actual == "main"
    else:
        ok = actual == thread_id or event_id == thread_id
    if not ok:
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          f"Event {event_id} is not in thread {thread_id}")


def _write_read_receipt(user_id: str, room_id: str, receipt_type: str, thread_id: str,
                        event_id: str, event_position: int) -> None:
    """In the caller's transaction. A receipt behind the user's current one of the same type
    and thread is ignored: read-up-to markers only move forward."""
    current = receipt_store.receipt_event_position(room_id, user_id, receipt_type, thread_id)
    if current is not None and current >= event_position:
        return
    position = next_stream_positions(1)
    receipt_store.upsert_receipt(
        room_id=room_id, user_id=user_id, receipt_type=receipt_type, thread_id=thread_id,
        event_id=event_id, event_stream_ordering=event_position, ts=_now(),
        stream_ordering=position,
    )
    receipt_store.advance_read_mark(user_id, room_id, thread_id, event_position)
    if thread_id in ("", "main"):
        days = settings.PALISADE.push.notification_history_days
        action_store.prune_read(user_id, room_id, event_position, _now() - days * 86_400_000)
    if receipt_type == "m.read":
        notify_after_commit(position, room_ids=[room_id], user_ids=[user_id])
        edus_out.send_read_receipt(room_id, user_id, event_id, _now(), thread_id)
    else:  # Spec: m.read.private goes to nobody but its owner
        notify_after_commit(position, user_ids=[user_id])


def _write_fully_read(user_id: str, room_id: str, event_id: str) -> None:
    position = next_stream_positions(1)
    data_store.put_account_data(user_id, room_id, FULLY_READ, {"event_id": event_id}, position)
    notify_after_commit(position, user_ids=[user_id])


def do_post_receipt(user_id: str, room_id: str, receipt_type: str, event_id: str,
                    body: dict[str, Any]) -> None:
    check_receipt_type(receipt_type)
    thread_id = check_thread_id(receipt_type, body)
    check_sender_in_room(room_id, user_id)
    event_position = _event_position(room_id, event_id)
    _check_thread_relation(event_id, thread_id)
    with transaction.atomic():
        if receipt_type == FULLY_READ:
            _write_fully_read(user_id, room_id, event_id)
        else:
            _write_read_receipt(user_id, room_id, receipt_type, thread_id, event_id,
                                event_position)


def do_read_markers(user_id: str, room_id: str, body: dict[str, Any]) -> None:
    """POST /read_markers: m.fully_read, m.read and m.read.private, each optional. Everything
    is checked before anything is written, in one transaction."""
    wanted: dict[str, tuple[str, int]] = {}
    for key in (FULLY_READ, *READ_TYPES):
        if key in body and body[key] is not None:
            if not isinstance(body[key], str):
                raise MatrixError(400, Errcode.BAD_JSON, f"{key} must be an event ID string")
            wanted[key] = (body[key], 0)
    check_sender_in_room(room_id, user_id)
    for key, (event_id, _) in wanted.items():
        wanted[key] = (event_id, _event_position(room_id, event_id))
    with transaction.atomic():
        for key, (event_id, position) in wanted.items():
            if key == FULLY_READ:
                _write_fully_read(user_id, room_id, event_id)
            else:
                _write_read_receipt(user_id, room_id, key, "", event_id, position)
