"""The server-wide stream position (see models.stream.StreamCounter)."""

from __future__ import annotations

import threading

from django.db import connection

MAIN = "main"


def next_stream_positions(n: int = 1) -> int:
    """Reserve n positions; returns the LAST one. Must run inside the writing transaction: the
    row lock taken here is held until commit, so positions become visible in order."""
    with connection.cursor() as cur:
        # An upsert, so a wiped counter row (e.g. a flushed test database) starts again at n.
        cur.execute(
            "INSERT INTO stream_counters (name, value) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET value = stream_counters.value + excluded.value "
            "RETURNING value",
            [MAIN, n],
        )
        return int(cur.fetchone()[0])


def current_stream_position() -> int:
    """The committed position: every write at or below it is visible (see StreamCounter).
    Raw SQL: every /sync and every long-poll wake-up reads it."""
    with connection.cursor() as cur:
        cur.execute("SELECT value FROM stream_counters WHERE name = %s", [MAIN])
        row = cur.fetchone()
    return int(row[0]) if row else 0


_keeps_connection = threading.local()


def keep_connection_on_this_thread() -> None:
    """Mark this thread as one that keeps its connection between calls (the Matrix handler's
    database threads): release_connection() leaves it alone there, since handing it back
    would only cost a re-checkout on the thread's next call."""
    _keeps_connection.value = True


def release_connection() -> None:
    """Give this thread's connection back to the pool before a long wait that needs none (a
    /sync long-poll), so parked clients never hold pooled connections. Without a pool (SQLite,
    pool_max_size = 0) it does nothing."""
    if getattr(_keeps_connection, "value", False):  # a long-lived database thread
        return
    if connection.settings_dict.get("OPTIONS", {}).get("pool") and not connection.in_atomic_block:
        connection.close()
