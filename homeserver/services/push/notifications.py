"""GET /notifications: the events the user was notified about, newest first.
Spec: client-server API "Listing Notifications"."""

from __future__ import annotations

from typing import Any

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.events.client_format import format_client_events
from homeserver.storage import events as event_store
from homeserver.storage import push_actions as action_store
from homeserver.storage.counts import is_read
from homeserver.storage.receipts import read_marks

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def parse_from(token: str | None) -> int | None:
    if token is None or token == "":
        return None
    if not token.isdigit():
        raise MatrixError(400, Errcode.INVALID_PARAM, f"Invalid from token {token!r}")
    return int(token)


def get_notifications(user_id: str, from_token: str | None, limit: int,
                      only: str | None) -> dict[str, Any]:
    if limit < 0:
        raise MatrixError(400, Errcode.INVALID_PARAM, "limit must not be negative")
    limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
    rows = action_store.notifications(user_id, before=parse_from(from_token), limit=limit,
                                      only_highlight=only == "highlight")
    records = event_store.get_event_records(r.event_id for r in rows)
    events = {e["event_id"]: e for e in format_client_events(
        [records[r.event_id] for r in rows if r.event_id in records], include_room_id=False)}
    marks: dict[str, dict[str, int]] = {}
    out = []
    for r in rows:
        if r.event_id not in events:
            continue
        if r.room_id not in marks:
            marks[r.room_id] = read_marks(user_id, r.room_id)
        out.append({
            "actions": r.actions,
            "event": events[r.event_id],
            "read": is_read(marks[r.room_id], r.stream_ordering, r.thread_id),
            "room_id": r.room_id,
            "ts": r.ts,
        })
    body: dict[str, Any] = {"notifications": out}
    if len(rows) == limit and rows:
        body["next_token"] = str(rows[-1].stream_ordering)
    return body
