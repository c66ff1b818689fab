"""Device-list changes, and the room-membership queries that decide who hears about them."""

from __future__ import annotations

from collections.abc import Iterable

from homeserver.models import CurrentState, DeviceListChange


def add_device_list_change(user_id: str, stream_ordering: int) -> None:
    DeviceListChange.objects.create(user_id=user_id, stream_ordering=stream_ordering)


def users_with_changes(since: int, upto: int, among: Iterable[str] | None = None) -> set[str]:
    """Users whose devices or keys changed in (since, upto]."""
    qs = DeviceListChange.objects.filter(stream_ordering__gt=since, stream_ordering__lte=upto)
    if among is not None:
        qs = qs.filter(user_id__in=list(among))
    return set(qs.values_list("user_id", flat=True).distinct())


def joined_members(room_ids: Iterable[str]) -> set[str]:
    """Everyone currently joined to any of these rooms."""
    room_ids = list(room_ids)
    if not room_ids:
        return set()
    return set(
        CurrentState.objects.filter(
            room_id__in=room_ids, type="m.room.member", membership="join"
        ).values_list("state_key", flat=True).distinct()
    )


def member_changes(room_ids: Iterable[str], since: int, upto: int) -> list[tuple[str, str, str]]:
    """(room_id, user_id, membership) of the current member events in these rooms that were
    written in (since, upto]."""
    room_ids = list(room_ids)
    if not room_ids:
        return []
    return list(
        CurrentState.objects.filter(
            room_id__in=room_ids, type="m.room.member",
            stream_ordering__gt=since, stream_ordering__lte=upto,
        ).values_list("room_id", "state_key", "membership")
    )
