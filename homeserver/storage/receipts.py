"""Receipts and read marks (what a user has read, for delivery and for notification counts)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

from homeserver.models import Event as EventRow
from homeserver.models import EventRelation, ReadMark, Receipt

READ_TYPES = ("m.read", "m.read.private")
# Spec "Threaded read receipts": follow relations at most 3 hops to find a thread.
MAX_THREAD_HOPS = 3


@dataclass(frozen=True)
class ReceiptRecord:
    room_id: str
    user_id: str
    receipt_type: str
    thread_id: str  # "" = unthreaded
    event_id: str
    ts: int
    stream_ordering: int


def event_position(room_id: str, event_id: str) -> int | None:
    """The stream position of a timeline event of the room (None: unknown, an outlier, or in
    another room)."""
    return (
        EventRow.objects.filter(event_id=event_id, room_id=room_id,
                                stream_ordering__isnull=False, rejection_reason__isnull=True)
        .values_list("stream_ordering", flat=True)
        .first()
    )


def thread_of(event_id: str) -> str:
    """The thread an event belongs to: its thread root's id, or "main". Spec "Threaded read
    receipts": an m.thread relation puts an event in its root's thread; other relations inherit
    the thread of their parent (at most MAX_THREAD_HOPS hops)."""
    current = event_id
    for _ in range(MAX_THREAD_HOPS):
        rel = (
            EventRelation.objects.filter(event_id=current)
            .values_list("rel_type", "relates_to_id")
            .first()
        )
        if rel is None:
            return "main"
        if rel[0] == "m.thread":
            return rel[1]
        current = rel[1]
    return "main"


def receipt_event_position(room_id: str, user_id: str, receipt_type: str,
                           thread_id: str) -> int | None:
    return (
        Receipt.objects.filter(room_id=room_id, user_id=user_id, receipt_type=receipt_type,
                               thread_id=thread_id)
        .values_list("event_stream_ordering", flat=True)
        .first()
    )


def upsert_receipt(*, room_id: str, user_id: str, receipt_type: str, thread_id: str,
                   event_id: str, event_stream_ordering: int, ts: int,
                   stream_ordering: int) -> None:
    Receipt.objects.update_or_create(
        room_id=room_id, user_id=user_id, receipt_type=receipt_type, thread_id=thread_id,
        defaults={"event_id": event_id, "event_stream_ordering": event_stream_ordering,
                  "ts": ts, "stream_ordering": stream_ordering},
    )


def receipts_for_sync(user_id: str, since: int | None, upto: int
                      ) -> list[tuple[ReceiptRecord, int]]:
    """(receipt, position of the user's join) in the rooms the user is joined to: those
    changed in (since, upto], and all current ones of rooms joined after `since` (everything
    when since is None); never other users' private receipts (spec "Private read receipts").
    One query."""
    params: list = [user_id, upto, user_id]
    where = ""
    if since is not None:
        where = "AND (r.stream_ordering > %s OR c.stream_ordering > %s) "
        params += [since, since]
    sql = (
        "SELECT r.room_id, r.user_id, r.receipt_type, r.thread_id, r.event_id, r.ts, "  # noqa: S608
        "r.stream_ordering, c.stream_ordering FROM receipts r "
        "JOIN current_state c ON c.room_id = r.room_id AND c.type = 'm.room.member' "
        "AND c.state_key = %s AND c.membership = 'join' "
        "WHERE r.stream_ordering <= %s AND (r.receipt_type = 'm.read' OR r.user_id = %s) "
        + where
    )
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return [(ReceiptRecord(*r[:7]), r[7]) for r in cur.fetchall()]


def advance_read_mark(user_id: str, room_id: str, thread_id: str, position: int) -> None:
    """Move the read mark forward to `position` (never back)."""
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO read_marks (user_id, room_id, thread_id, stream_ordering) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (user_id, room_id, thread_id) DO UPDATE "
            "SET stream_ordering = excluded.stream_ordering "
            "WHERE read_marks.stream_ordering < excluded.stream_ordering",
            [user_id, room_id, thread_id, position],
        )


def read_marks(user_id: str, room_id: str) -> dict[str, int]:
    return dict(
        ReadMark.objects.filter(user_id=user_id, room_id=room_id)
        .values_list("thread_id", "stream_ordering")
    )


def delete_for_users(user_ids: Iterable[str]) -> None:
    """Erasure: a user's receipts and read marks."""
    ids = list(user_ids)
    Receipt.objects.filter(user_id__in=ids).delete()
    ReadMark.objects.filter(user_id__in=ids).delete()
