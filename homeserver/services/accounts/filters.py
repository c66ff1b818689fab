"""Stored filters: POST /user/{userId}/filter and GET /user/{userId}/filter/{filterId}.

Spec: client-server API "Filtering" and the Filter / RoomFilter / EventFilter /
RoomEventFilter schemas. Known keys are type-checked (400 M_BAD_JSON naming the key); unknown
keys are kept, as future spec versions add fields.
"""

from __future__ import annotations

import secrets
from typing import Any

from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts.user_ids import local_user_from_path
from homeserver.storage import filters as filter_store

MAX_FILTER_BYTES = 64 * 1024
_STRING_LISTS = ("types", "not_types", "senders", "not_senders", "rooms", "not_rooms")
_BOOLEANS = ("contains_url", "include_redundant_members", "lazy_load_members",
             "unread_thread_notifications", "include_leave")
_ROOM_EVENT_FILTERS = ("ephemeral", "state", "timeline", "account_data")


def _bad(path: str, expected: str) -> MatrixError:
    return MatrixError(400, Errcode.BAD_JSON, f"{path} must be {expected}")


def _check_event_filter(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _bad(path, "an object")
    for key in _STRING_LISTS:
        if key in value and (
            not isinstance(value[key], list) or not all(isinstance(v, str) for v in value[key])
        ):
            raise _bad(f"{path}.{key}", "a list of strings")
    for key in _BOOLEANS:
        if key in value and not isinstance(value[key], bool):
            raise _bad(f"{path}.{key}", "a boolean")
    if "limit" in value:
        limit = value["limit"]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise _bad(f"{path}.limit", "a positive integer")


def check_filter(definition: Any) -> dict[str, Any]:
    if not isinstance(definition, dict):
        raise _bad("filter", "an object")
    fields = definition.get("event_fields")
    if fields is not None and (
        not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
    ):
        raise _bad("event_fields", "a list of strings")
    if definition.get("event_format", "client") not in ("client", "federation"):
        raise _bad("event_format", "'client' or 'federation'")
    for key in ("presence", "account_data"):
        if key in definition:
            _check_event_filter(definition[key], key)
    if "room" in definition:
        room = definition["room"]
        _check_event_filter(room, "room")  # rooms, not_rooms, include_leave
        for key in _ROOM_EVENT_FILTERS:
            if key in room:
                _check_event_filter(room[key], f"room.{key}")
    return definition


def _check_owner(requester: str, user_id_text: str, verb: str) -> None:
    if str(local_user_from_path(user_id_text)) != requester:
        raise MatrixError(403, Errcode.FORBIDDEN, f"Cannot {verb} filters for other users")


def do_create_filter(requester: str, user_id_text: str, definition: Any) -> dict[str, str]:
    _check_owner(requester, user_id_text, "create")
    check_filter(definition)
    try:
        text = encode_canonical_json(definition).decode("utf-8")
    except (TypeError, ValueError):
        raise MatrixError(400, Errcode.BAD_JSON, "Filter is not valid JSON") from None
    if len(text) > MAX_FILTER_BYTES:
        raise MatrixError(400, Errcode.TOO_LARGE, "Filter is too large")
    existing = filter_store.find_filter_id(requester, text)
    if existing is not None:
        return {"filter_id": existing}
    # Spec: filter IDs are opaque but must not start with "{" (that marks inline filters).
    filter_id = secrets.token_hex(8)
    filter_store.insert_filter(requester, filter_id, text)
    return {"filter_id": filter_id}


def get_filter(requester: str, user_id_text: str, filter_id: str) -> dict[str, Any]:
    _check_owner(requester, user_id_text, "get")
    found = filter_store.load_filter(requester, filter_id)
    if found is None:
        raise MatrixError(404, Errcode.NOT_FOUND, "No such filter")
    return found
