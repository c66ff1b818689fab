"""Unread notification counts for /sync and push: the user's notifications (event_push_actions)
after their read marks. Spec: client-server API "Receiving notifications" and "Marking
notifications as read": a notification is read when the unthreaded mark, or the mark of its own
thread ("main" or the thread root), is at or after it."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from homeserver.storage import placeholders

_UNREAD = (
    "FROM event_push_actions a "
    "LEFT JOIN read_marks u ON u.user_id = a.user_id AND u.room_id = a.room_id "
    "  AND u.thread_id = '' "
    "LEFT JOIN read_marks t ON t.user_id = a.user_id AND t.room_id = a.room_id "
    "  AND t.thread_id = a.thread_id "
    "WHERE a.user_id = %s AND a.stream_ordering > COALESCE(u.stream_ordering, 0) "
    "AND a.stream_ordering > COALESCE(t.stream_ordering, 0) "
)


def notification_counts(user_id: str, room_ids: Iterable[str], upto: int
                        ) -> dict[str, tuple[int, int]]:
    """room_id -> (notification_count, highlight_count) of unread notifications up to `upto`;
    rooms without any are absent. One query for all rooms."""
    rooms = list(room_ids)
    if not rooms:
        return {}
    marks = placeholders(len(rooms))
    sql = (
        "SELECT a.room_id, COUNT(*), SUM(CASE WHEN a.highlight THEN 1 ELSE 0 END) "
        + _UNREAD
        + f"AND a.room_id IN ({marks}) AND a.stream_ordering <= %s GROUP BY a.room_id"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [user_id, *rooms, upto])
        return {room: (int(n), int(h or 0)) for room, n, h in cur.fetchall()}


def total_unread(user_id: str) -> int:
    """All of the user's unread notifications, across rooms (the push gateway's badge)."""
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) " + _UNREAD, [user_id])
        return int(cur.fetchone()[0])


def is_read(marks: dict[str, int], stream_ordering: int, thread_id: str) -> bool:
    """Given the user's read marks in a room (storage.receipts.read_marks)."""
    return stream_ordering <= max(marks.get("", 0), marks.get(thread_id, 0))
