"""Room tags, kept as the user's `m.tag` room account data so /sync delivers them.

Spec: client-server API "Room Tagging" (GET /user/{userId}/rooms/{roomId}/tags,
PUT/DELETE .../tags/{tag}): tag names are at most 255 bytes; `order` is a number in [0, 1].
"""

from __future__ import annotations

import math
from typing import Any

from django.db import transaction

from homeserver.effects.notifier import notify_after_commit
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts.user_ids import local_user_from_path
from homeserver.services.directory.aliases import parse_room_id
from homeserver.storage import account_data as data_store
from homeserver.storage import events as event_store
from homeserver.storage import state as state_store
from homeserver.storage.stream import next_stream_positions

TAG_TYPE = "m.tag"


def _check(requester: str, user_id_text: str, room_id: str, verb: str) -> str:
    """Spec: "The access token must be authorised to make requests for this user ID"."""
    if str(local_user_from_path(user_id_text)) != requester:
        raise MatrixError(403, Errcode.FORBIDDEN, f"Cannot {verb} tags for other users.")
    return parse_room_id(room_id)


def _check_tag(tag: str) -> None:
    if not tag or len(tag.encode()) > 255:
        raise MatrixError(400, Errcode.INVALID_PARAM, "Tag names must be 1-255 bytes")


def _check_tag_content(content: dict[str, Any]) -> None:
    if "order" in content:
        order = content["order"]
        if isinstance(order, bool) or not isinstance(order, int | float):
            raise MatrixError(400, Errcode.BAD_JSON, "order must be a number")
        if not math.isfinite(order) or not 0 <= order <= 1:
            raise MatrixError(400, Errcode.INVALID_PARAM, "order must be between 0 and 1")


def _tags(user_id: str, room_id: str) -> dict[str, Any]:
    content = data_store.get_account_data(user_id, room_id, TAG_TYPE) or {}
    tags = content.get("tags")
    return dict(tags) if isinstance(tags, dict) else {}


def get_tags(requester: str, user_id_text: str, room_id: str) -> dict[str, Any]:
    room = _check(requester, user_id_text, room_id, "get")
    return {"tags": _tags(requester, room)}


def _write(user_id: str, room_id: str, tags: dict[str, Any]) -> None:
    position = next_stream_positions(1)
    data_store.put_account_data(user_id, room_id, TAG_TYPE, {"tags": tags}, position)
    notify_after_commit(position, user_ids=[user_id])


def do_put_tag(
    requester: str, user_id_text: str, room_id: str, tag: str, content: dict[str, Any]
) -> None:
    room = _check(requester, user_id_text, room_id, "add")
    _check_tag(tag)
    _check_tag_content(content)
    with transaction.atomic():
        tags = _tags(requester, room)
        tags[tag] = content
        _write(requester, room, tags)


def do_delete_tag(requester: str, user_id_text: str, room_id: str, tag: str) -> None:
    """Removing a tag the room does not have succeeds and changes nothing."""
    room = _check(requester, user_id_text, room_id, "delete")
    _check_tag(tag)
    with transaction.atomic():
        tags = _tags(requester, room)
        if tag not in tags:
            return
        del tags[tag]
        _write(requester, room, tags)


def copy_tags(user_id: str, from_room: str, to_room: str) -> None:
    """Spec "Room upgrades": carry the user's tags over to the replacement room (unless they
    already tagged it). Runs inside the caller's transaction."""
    tags = _tags(user_id, from_room)
    if tags and not _tags(user_id, to_room):
        _write(user_id, to_room, tags)


def carry_tags_from_predecessor(user_id: str, room_id: str) -> None:
    """On joining a replacement room (its create event names a `predecessor`), bring the
    user's tags along (spec "Room upgrades": "the server should automatically transfer ...
    tags")."""
    key = ("m.room.create", "")
    eid = state_store.current_state_ids(room_id, [key]).get(key)
    create = event_store.get_event(eid) if eid else None
    pred = create.content.get("predecessor") if create is not None else None
    if isinstance(pred, dict) and isinstance(pred.get("room_id"), str):
        with transaction.atomic():
            copy_tags(user_id, pred["room_id"], room_id)
