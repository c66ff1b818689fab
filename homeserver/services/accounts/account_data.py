"""Account data: per-user (and per-user-per-room) JSON objects clients store on the server.

Spec: client-server API "Client Config" (GET/PUT /user/{userId}/account_data/{type} and
/user/{userId}/rooms/{roomId}/account_data/{type}). Each write takes a stream position in its
transaction and wakes the user's /sync long-polls after commit.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, RoomID
from homeserver.services.accounts.user_ids import local_user_from_path
from homeserver.storage import account_data as data_store
from homeserver.storage.stream import next_stream_positions

# Spec: these types are maintained by the server (read markers, push rules APIs): 405 M_BAD_JSON.
SERVER_MANAGED_TYPES = frozenset({"m.fully_read", "m.push_rules"})


def _check_owner(requester: str, user_id_text: str, verb: str) -> None:
    if str(local_user_from_path(user_id_text)) != requester:
        raise MatrixError(403, Errcode.FORBIDDEN, f"Cannot {verb} account data for other users.")


def _check_type(data_type: str) -> None:
    if not data_type or len(data_type.encode()) > 255:
        raise MatrixError(400, Errcode.INVALID_PARAM, "Account data type must be 1-255 bytes")


def _check_room(room_id: str | None) -> str:
    if room_id is None:
        return ""
    try:
        RoomID.parse(room_id)
    except InvalidIdentifier:
        raise MatrixError(400, Errcode.INVALID_PARAM, f"{room_id!r} is not a valid room ID") \
            from None
    return room_id


def get_account_data(requester: str, user_id_text: str, data_type: str,
                     room_id: str | None = None) -> dict[str, Any]:
    _check_owner(requester, user_id_text, "get")
    room = _check_room(room_id)
    content = data_store.get_account_data(requester, room, data_type)
    if content is None:
        raise MatrixError(404, Errcode.NOT_FOUND, "Account data not found")
    return content


def do_put_account_data(requester: str, user_id_text: str, data_type: str,
                        content: dict[str, Any], room_id: str | None = None) -> None:
    _check_owner(requester, user_id_text, "add")
    room = _check_room(room_id)
    _check_type(data_type)
    if data_type in SERVER_MANAGED_TYPES:
        raise MatrixError(405, Errcode.BAD_JSON, f"Cannot set {data_type} through this API.")
    with transaction.atomic():
        position = next_stream_positions(1)
        data_store.put_account_data(requester, room, data_type, content, position)
        notify_after_commit(position, user_ids=[requester])
