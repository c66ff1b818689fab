"""Per-user notifications (event_push_actions): written when an event is persisted, read for
unread counts (storage/counts.py) and GET /notifications."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection

from homeserver.models import EventPushAction


@dataclass(frozen=True)
class PushMember:
    user_id: str
    rules: dict[str, Any] | None  # stored push rules, None = server defaults
    has_pusher: bool


@dataclass(frozen=True)
class NotificationRow:
    room_id: str
    event_id: str
    stream_ordering: int
    actions: list[Any]
    highlight: bool
    ts: int
    thread_id: str


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def members_for_push(room_id: str) -> list[PushMember]:
    """The room's joined members with their stored push rules and whether they have an http
    pusher: everything evaluation needs about the members, in one query."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.state_key, p.data, EXISTS (SELECT 1 FROM pushers u "
            "  WHERE u.user_id = c.state_key AND u.kind = 'http') "
            "FROM current_state c LEFT JOIN push_rulesets p ON p.user_id = c.state_key "
            "WHERE c.room_id = %s AND c.type = 'm.room.member' AND c.membership = 'join'",
            [room_id],
        )
        return [PushMember(u, _json(d) if d is not None else None, bool(h))
                for u, d, h in cur.fetchall()]


def push_member(user_id: str) -> PushMember:
    """One user's push settings (for an invitee, who is not yet a member)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT (SELECT p.data FROM push_rulesets p WHERE p.user_id = %s), "
            "EXISTS (SELECT 1 FROM pushers u WHERE u.user_id = %s AND u.kind = 'http')",
            [user_id, user_id],
        )
        data, has = cur.fetchone()
    return PushMember(user_id, _json(data) if data is not None else None, bool(has))


def member_display_names(room_id: str) -> dict[str, str]:
    """Joined members' display names in the room (from their member events)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.state_key, e.json FROM current_state c "
            "JOIN events e ON e.event_id = c.event_id "
            "WHERE c.room_id = %s AND c.type = 'm.room.member' AND c.membership = 'join'",
            [room_id],
        )
        out = {}
        for user_id, text in cur.fetchall():
            name = orjson.loads(text).get("content", {}).get("displayname")
            if isinstance(name, str) and name:
                out[user_id] = name
        return out


def insert_actions(rows: Iterable[dict[str, Any]]) -> None:
    """Raw multi-row INSERTs (100 rows, 800 parameters each: within SQLite's 999): every
    message writes one row per notified member."""
    rows = list(rows)
    with connection.cursor() as cur:
        for i in range(0, len(rows), 100):
            batch = rows[i:i + 100]
            cur.execute(
                "INSERT INTO event_push_actions (user_id, room_id, event_id, "  # noqa: S608
                "stream_ordering, thread_id, highlight, actions, ts) VALUES "
                + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(batch)),
                [v for r in batch for v in (
                    r["user_id"], r["room_id"], r["event_id"], r["stream_ordering"],
                    r.get("thread_id", "main"), bool(r.get("highlight", False)),
                    orjson.dumps(r["actions"]).decode(), r["ts"])],
            )


def actions_for(user_id: str, event_id: str) -> NotificationRow | None:
    row = (
        EventPushAction.objects.filter(user_id=user_id, event_id=event_id)
        .values_list("room_id", "event_id", "stream_ordering", "actions", "highlight", "ts",
                     "thread_id")
        .first()
    )
    return NotificationRow(*row) if row else None


def notifications(user_id: str, *, before: int | None, limit: int,
                  only_highlight: bool) -> list[NotificationRow]:
    """The user's notifications, newest first, with stream_ordering < before."""
    qs = EventPushAction.objects.filter(user_id=user_id)
    if before is not None:
        qs = qs.filter(stream_ordering__lt=before)
    if only_highlight:
        qs = qs.filter(highlight=True)
    rows = qs.order_by("-stream_ordering").values_list(
        "room_id", "event_id", "stream_ordering", "actions", "highlight", "ts", "thread_id"
    )[:limit]
    return [NotificationRow(*r) for r in rows]


def prune_read(user_id: str, room_id: str, read_upto: int, older_than_ts: int) -> None:
    """Drop notifications the user has read that are older than the history kept for
    GET /notifications."""
    EventPushAction.objects.filter(
        user_id=user_id, room_id=room_id, stream_ordering__lte=read_upto, ts__lt=older_than_ts
    ).delete()


def delete_for_users(user_ids: Iterable[str]) -> None:
    EventPushAction.objects.filter(user_id__in=list(user_ids)).delete()
