"""Sending events as a local user: messages, state, redactions, membership changes.

check_* validate and never write; do_* open the transaction, ask the policy hooks, write,
audit and schedule effects.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from compliance.hooks import Hook, records_policy_denials
from compliance.hooks import run as run_policy
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.directory.canonical_alias import check_canonical_alias
from homeserver.services.events.append import append_local_event, now_ms, persist_local_event
from homeserver.services.events.audit_membership import audit_membership_change
from homeserver.services.ratelimit import check_rate_limit
from homeserver.storage import rooms as room_store
from homeserver.storage import state as state_store
from homeserver.storage.txns import record_txn, txn_event


def check_event_shape(event_type: Any, content: Any, state_key: Any = None) -> None:
    if not isinstance(event_type, str) or not event_type or len(event_type.encode()) > 255:
        raise MatrixError(400, Errcode.INVALID_PARAM, "Event type must be 1-255 bytes")
    if not isinstance(content, dict):
        raise MatrixError(400, Errcode.BAD_JSON, "Event content must be a JSON object")
    if state_key is not None and (not isinstance(state_key, str) or len(state_key.encode()) > 255):
        raise MatrixError(400, Errcode.INVALID_PARAM, "State key must be at most 255 bytes")


def check_sender_in_room(room_id: str, user_id: str) -> None:
    """Spec: client-server API: sending requires the sender to be joined. Rooms we don't know
    and rooms the user never joined give the same answer, so existence does not leak."""
    m = state_store.membership_of(room_id, user_id)
    if m is None or m[0] != "join":
        raise MatrixError(403, Errcode.FORBIDDEN, f"User {user_id} is not in room {room_id}")


@records_policy_denials
def do_send_event(
    *,
    room_id: str,
    sender: str,
    event_type: str,
    content: dict[str, Any],
    state_key: str | None = None,
    device_id: str | None = None,
    txn_id: str | None = None,
    redacts: str | None = None,
) -> str:
    """Send one event as `sender`; returns its event id. With a txn_id, a retry with the same
    (device, room, type, txn_id) returns the first event id and sends nothing."""
    check_event_shape(event_type, content, state_key)
    path_key = f"{room_id}/{event_type}"
    rv = room_store.room_version(room_id)
    if rv is None:
        raise MatrixError(403, Errcode.FORBIDDEN, f"User {sender} is not in room {room_id}")
    if event_type != "m.room.member":
        check_sender_in_room(room_id, sender)
    run_policy(
        Hook.CLIENT_SEND,
        {
            "actor": sender,
            "target": room_id,
            "room_id": room_id,
            "event_type": event_type,
            "is_state": state_key is not None,
            "room_version": rv.identifier,
            **({"redacts": redacts} if redacts else {}),
        },
        value={"type": event_type, "state_key": state_key, "content": content},
    )
    try:
        with transaction.atomic():
            if txn_id is not None:
                existing = txn_event(sender, device_id or "", path_key, txn_id)
                if existing:
                    return existing
            state_group = room_store.lock_room(room_id)
            event = append_local_event(
                room_id=room_id,
                room_version=rv,
                sender=sender,
                event_type=event_type,
                content=content,
                state_key=state_key,
                redacts=redacts,
            )
            if event.type == "m.room.canonical_alias" and event.state_key == "":
                check_canonical_alias(room_id, event.content)  # after auth: 403 comes first
            if txn_id is not None:  # before persisting: it needs no stream position
                record_txn(sender, device_id or "", path_key, txn_id, event.event_id, now_ms())
            persist_local_event(event, state_group)
            if event.type == "m.room.member":
                audit_membership_change(event)
            return event.event_id
    except IntegrityError:
        # A concurrent retry of the same txn committed first: answer with its event.
        if txn_id is not None:
            existing = txn_event(sender, device_id or "", path_key, txn_id)
            if existing:
                return existing
        raise


def do_client_send(*, sender: str, **kwargs: Any) -> str:
    """A send a client asked for (PUT /send, /state, /redact): rate-limited per user
    (`[rate_limits] message`), then do_send_event. Sends the server makes on a user's behalf
    (profile propagation, room creation) are not rate-limited."""
    check_rate_limit("message", f"user:{sender}")
    return do_send_event(sender=sender, **kwargs)
