"""History fetched from other servers (backfill): where our copy of a room's graph ends, and the
stream positions backfilled events get — negative and decreasing, so they sort before
everything we already hold in /messages and never appear in /sync as new."""

from __future__ import annotations

from django.db import connection

BACKFILL = "backfill"


def reserve_backfill_positions(n: int) -> list[int]:
    """n fresh negative positions, lowest first: give the oldest event the first one."""
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO stream_counters (name, value) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET value = stream_counters.value + excluded.value "
            "RETURNING value",
            [BACKFILL, n])
        top = int(cur.fetchone()[0])
    return [-top + i for i in range(n)]


def backward_extremities(room_id: str, limit: int = 20) -> list[str]:
    """prev_events of the room's timeline events that we do not hold in the timeline: the
    edges where our copy of the history stops."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT g.prev_event_id FROM event_edges g "
            "LEFT JOIN events e ON e.event_id = g.prev_event_id "
            "WHERE g.room_id = %s AND (e.event_id IS NULL OR e.outlier) "
            "ORDER BY g.prev_event_id LIMIT %s",
            [room_id, limit])
        return [r[0] for r in cur.fetchall()]
