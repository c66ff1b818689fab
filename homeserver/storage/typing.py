"""Typing notifications: one row per (room, user) that has ever typed there."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from homeserver.models import TypingState


@dataclass(frozen=True)
class TypingRow:
    room_id: str
    user_id: str
    expires_ts: int  # 0 = not typing
    stream_ordering: int


_COLUMNS = ("room_id", "user_id", "expires_ts", "stream_ordering")


def get_typing(room_id: str, user_id: str) -> TypingRow | None:
    row = (
        TypingState.objects.select_for_update()
        .filter(room_id=room_id, user_id=user_id)
        .values_list(*_COLUMNS)
        .first()
    )
    return TypingRow(*row) if row else None


def put_typing(room_id: str, user_id: str, expires_ts: int, stream_ordering: int | None) -> None:
    """Write the row; `stream_ordering=None` keeps the row's position (an extension of a
    typing period that nobody else can observe)."""
    if stream_ordering is None:
        TypingState.objects.filter(room_id=room_id, user_id=user_id).update(expires_ts=expires_ts)
        return
    TypingState.objects.update_or_create(
        room_id=room_id, user_id=user_id,
        defaults={"expires_ts": expires_ts, "stream_ordering": stream_ordering},
    )


_JOINED = (
    "JOIN current_state c ON c.room_id = {t}.room_id AND c.type = 'm.room.member' "
    "AND c.state_key = %s AND c.membership = 'join' "
)


def typing_for_sync(user_id: str, since: int | None) -> list[tuple[TypingRow, int]]:
    """(row, position of the user's join) for the rooms the user is joined to, where someone
    types now (expires_ts > 0, possibly due) or something changed after `since`: enough to tell
    which rooms changed and who types in them. One query."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT t.room_id, t.user_id, t.expires_ts, t.stream_ordering, c.stream_ordering "
            "FROM typing_states t " + _JOINED.format(t="t")
            + "WHERE t.expires_ts > 0 OR t.stream_ordering > %s",
            [user_id, -1 if since is None else since],
        )
        return [(TypingRow(*r[:4]), r[4]) for r in cur.fetchall()]


def due_typing(now_ms: int) -> list[tuple[str, str]]:
    """(room, user) of typing periods that have run out, locked for the caller's transaction."""
    return list(
        TypingState.objects.select_for_update()
        .filter(expires_ts__gt=0, expires_ts__lte=now_ms)
        .order_by("room_id", "user_id")
        .values_list("room_id", "user_id")
    )


def stop_typing(room_id: str, user_ids: list[str], stream_ordering: int) -> None:
    TypingState.objects.filter(room_id=room_id, user_id__in=user_ids).update(
        expires_ts=0, stream_ordering=stream_ordering
    )


def make_due(user_id: str) -> None:
    """End the user's typing periods at the next expiry run (which writes the stops)."""
    TypingState.objects.filter(user_id=user_id, expires_ts__gt=1).update(expires_ts=1)
