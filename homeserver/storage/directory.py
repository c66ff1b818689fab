"""Reads for the published room directory and the user directory, and the closest event to a
timestamp. Bulk queries: a page of the directory or a search costs a fixed number of queries,
not one per room."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Q

from homeserver.models import Account, CurrentState, Profile, Room
from homeserver.models import Event as EventRow
from homeserver.storage.state import StateKey


def room_is_public(room_id: str) -> bool | None:
    """Whether the room is published in the local directory; None for a room we don't know."""
    return Room.objects.filter(room_id=room_id).values_list("is_public", flat=True).first()


def published_room_ids() -> list[str]:
    return list(Room.objects.filter(is_public=True).values_list("room_id", flat=True))


def bulk_state_ids(room_ids: Iterable[str], keys: Iterable[StateKey]) -> dict[str, dict]:
    """room_id -> {(type, state_key): event_id} for the given keys of each room's current state."""
    keys = set(keys)
    rows = CurrentState.objects.filter(
        room_id__in=list(room_ids), type__in={t for t, _ in keys}
    ).values_list("room_id", "type", "state_key", "event_id")
    out: dict[str, dict] = {}
    for room_id, t, sk, eid in rows:
        if (t, sk) in keys:
            out.setdefault(room_id, {})[(t, sk)] = eid
    return out


def joined_member_counts(room_ids: Iterable[str]) -> dict[str, int]:
    rows = (
        CurrentState.objects.filter(
            room_id__in=list(room_ids), type="m.room.member", membership="join"
        )
        .values("room_id")
        .annotate(n=Count("id"))
        .values_list("room_id", "n")
    )
    return dict(rows)


def rooms_whose_state_may_contain(event_type: str, needle: str) -> list[str]:
    """Rooms whose current (event_type, "") event's canonical JSON contains `needle`.

    A cheap SQL prefilter (events are stored as canonical JSON, so `"join_rule":"public"` is
    exact bytes); callers confirm each hit on the parsed content."""
    current = CurrentState.objects.filter(type=event_type, state_key="").values("event_id")
    return list(
        EventRow.objects.filter(event_id__in=current, json__contains=needle).values_list(
            "room_id", flat=True
        )
    )


def joined_room_ids(user_id: str) -> list[str]:
    return list(
        CurrentState.objects.filter(
            type="m.room.member", state_key=user_id, membership="join"
        ).values_list("room_id", flat=True)
    )


def search_joined_members(room_ids: list[str], term: str, cap: int) -> list[str]:
    """Distinct users joined to any of `room_ids` whose user ID or (local) display name contains
    `term`, case-insensitively; at most `cap` of them, in user ID order."""
    by_name = Profile.objects.filter(displayname__icontains=term).values("user_id")
    deactivated = Account.objects.filter(deactivated=True).values("user_id")
    return list(
        CurrentState.objects.filter(
            room_id__in=room_ids, type="m.room.member", membership="join"
        )
        .filter(Q(state_key__icontains=term) | Q(state_key__in=by_name))
        .exclude(state_key__in=deactivated)
        .values_list("state_key", flat=True)
        .distinct()
        .order_by("state_key")[:cap]
    )


def profiles(user_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """user_id -> (displayname, avatar_url) of local users ("" = not set)."""
    return {
        uid: (name, avatar)
        for uid, name, avatar in Profile.objects.filter(user_id__in=list(user_ids)).values_list(
            "user_id", "displayname", "avatar_url"
        )
    }


def events_near_timestamp(room_id: str, ts: int, *, forwards: bool, limit: int) -> list[str]:
    """Ids of the room's timeline events at or after (forwards) / at or before `ts`, closest
    first; ties in timestamp go by stream order in the same direction."""
    qs = EventRow.objects.filter(
        room_id=room_id, stream_ordering__isnull=False, rejection_reason__isnull=True
    )
    if forwards:
        qs = qs.filter(origin_server_ts__gte=ts).order_by("origin_server_ts", "stream_ordering")
    else:
        qs = qs.filter(origin_server_ts__lte=ts).order_by("-origin_server_ts", "-stream_ordering")
    return list(qs.values_list("event_id", flat=True)[:limit])
