"""Filters as /sync and /messages apply them. Spec: client-server API "Filtering"
(POST /user/{userId}/filter; the `filter` query parameter is a filter id or inline JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from homeserver.protocol.errors import Errcode, MatrixError

DEFAULT_TIMELINE_LIMIT = 10
MAX_TIMELINE_LIMIT = 1000


@dataclass(frozen=True)
class EventFilter:
    """Spec: "EventFilter"/"RoomEventFilter" fields used for matching."""

    limit: int | None = None
    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    contains_url: bool | None = None

    def matches(self, event: dict[str, Any]) -> bool:
        etype = event.get("type", "")
        if any(_glob(p, etype) for p in self.not_types):
            return False
        if self.types is not None and not any(_glob(p, etype) for p in self.types):
            return False
        sender = event.get("sender")
        if sender in self.not_senders:
            return False
        if self.senders is not None and sender not in self.senders:
            return False
        if self.contains_url is not None:
            has_url = isinstance(event.get("content", {}).get("url"), str)
            if has_url != self.contains_url:
                return False
        return True

    def room_allowed(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms


@dataclass(frozen=True)
class SyncFilter:
    timeline: EventFilter = field(default_factory=EventFilter)
    state: EventFilter = field(default_factory=EventFilter)
    ephemeral: EventFilter = field(default_factory=EventFilter)
    account_data: EventFilter = field(default_factory=EventFilter)
    room_account_data: EventFilter = field(default_factory=EventFilter)
    presence: EventFilter = field(default_factory=EventFilter)
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    include_leave: bool = False
    event_fields: tuple[str, ...] | None = None

    @property
    def timeline_limit(self) -> int:
        return self.timeline.limit if self.timeline.limit is not None else DEFAULT_TIMELINE_LIMIT

    def room_allowed(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms


def _glob(pattern: str, value: str) -> bool:
    # Spec: filter type patterns allow a trailing '*' wildcard.
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


def _strs(d: dict, key: str) -> tuple[str, ...] | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise MatrixError(400, Errcode.BAD_JSON, f"filter field {key} must be a list of strings")
    return tuple(v)


def parse_event_filter(d: Any, *, default_limit: int | None = None) -> EventFilter:
    if d is None:
        return EventFilter(limit=default_limit)
    if not isinstance(d, dict):
        raise MatrixError(400, Errcode.BAD_JSON, "filter sections must be objects")
    limit = d.get("limit", default_limit)
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise MatrixError(400, Errcode.BAD_JSON, "filter limit must be a non-negative integer")
    for flag in ("lazy_load_members", "include_redundant_members"):
        if flag in d and not isinstance(d[flag], bool):
            raise MatrixError(400, Errcode.BAD_JSON, f"filter field {flag} must be a boolean")
    return EventFilter(
        limit=min(limit, MAX_TIMELINE_LIMIT) if limit is not None else None,
        types=_strs(d, "types"),
        not_types=_strs(d, "not_types") or (),
        senders=_strs(d, "senders"),
        not_senders=_strs(d, "not_senders") or (),
        rooms=_strs(d, "rooms"),
        not_rooms=_strs(d, "not_rooms") or (),
        lazy_load_members=bool(d.get("lazy_load_members", False)),
        include_redundant_members=bool(d.get("include_redundant_members", False)),
        contains_url=d.get("contains_url") if isinstance(d.get("contains_url"), bool) else None,
    )


def parse_sync_filter(d: Any) -> SyncFilter:
    """Validate a filter definition (also used when a client uploads one)."""
    if d is None:
        return SyncFilter()
    if not isinstance(d, dict):
        raise MatrixError(400, Errcode.BAD_JSON, "filter must be a JSON object")
    room = d.get("room") or {}
    if not isinstance(room, dict):
        raise MatrixError(400, Errcode.BAD_JSON, "filter.room must be an object")
    fields = _strs(d, "event_fields")
    if "include_leave" in room and not isinstance(room["include_leave"], bool):
        raise MatrixError(400, Errcode.BAD_JSON, "room.include_leave must be a boolean")
    return SyncFilter(
        timeline=parse_event_filter(room.get("timeline")),
        state=parse_event_filter(room.get("state")),
        ephemeral=parse_event_filter(room.get("ephemeral")),
        account_data=parse_event_filter(d.get("account_data")),
        room_account_data=parse_event_filter(room.get("account_data")),
        presence=parse_event_filter(d.get("presence")),
        rooms=_strs(room, "rooms"),
        not_rooms=_strs(room, "not_rooms") or (),
        include_leave=bool(room.get("include_leave", False)),
        event_fields=fields,
    )


def parse_inline_or_stored(raw: str | None, load_stored) -> SyncFilter:
    """`filter` query param: inline JSON when it starts with '{', else a stored filter id."""
    if not raw:
        return SyncFilter()
    if raw.lstrip().startswith("{"):
        try:
            return parse_sync_filter(orjson.loads(raw))
        except orjson.JSONDecodeError:
            raise MatrixError(400, Errcode.NOT_JSON, "Inline filter is not valid JSON") from None
    stored = load_stored(raw)
    if stored is None:
        raise MatrixError(400, Errcode.INVALID_PARAM, f"No filter with id {raw!r}")
    return parse_sync_filter(stored)
