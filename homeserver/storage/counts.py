"""Cheap per-room counters for /sync."""

from __future__ import annotations

from django.db.models import Max

from homeserver.models import Event as EventRow

COUNTED_TYPES = ("m.room.message", "m.room.encrypted", "m.sticker")


def unread_since_own_event(room_id: str, user_id: str, upto: int) -> int:
    own = (
        EventRow.objects.filter(
            room_id=room_id, sender=user_id, stream_ordering__lte=upto
        ).aggregate(m=Max("stream_ordering"))["m"]
        or 0
    )
    return (
        EventRow.objects.filter(
            room_id=room_id,
            stream_ordering__gt=own,
            stream_ordering__lte=upto,
            type__in=COUNTED_TYPES,
        )
        .exclude(sender=user_id)
        .count()
    )
