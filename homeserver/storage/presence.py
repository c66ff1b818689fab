"""Presence of local users."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from homeserver.models import CurrentState, Presence


@dataclass(frozen=True)
class PresenceRow:
    user_id: str
    state: str
    status_msg: str | None
    last_active_ts: int
    stream_ordering: int


_COLUMNS = ("user_id", "state", "status_msg", "last_active_ts", "stream_ordering")


def get_presence(user_id: str, *, for_update: bool = False) -> PresenceRow | None:
    qs = Presence.objects.filter(user_id=user_id)
    if for_update:
        qs = qs.select_for_update()
    row = qs.values_list(*_COLUMNS).first()
    return PresenceRow(*row) if row else None


def put_presence(user_id: str, state: str, status_msg: str | None, last_active_ts: int,
                 stream_ordering: int) -> None:
    Presence.objects.update_or_create(
        user_id=user_id,
        defaults={"state": state, "status_msg": status_msg, "last_active_ts": last_active_ts,
                  "stream_ordering": stream_ordering},
    )


def touch(user_id: str, last_active_ts: int) -> None:
    Presence.objects.filter(user_id=user_id).update(last_active_ts=last_active_ts)


def _shared_room_users(user_id: str):
    my_rooms = CurrentState.objects.filter(
        type="m.room.member", state_key=user_id, membership="join"
    ).values("room_id")
    return CurrentState.objects.filter(
        type="m.room.member", membership="join", room_id__in=my_rooms
    ).values("state_key")


def presence_for_sync(user_id: str, since: int | None, upto: int) -> list[PresenceRow]:
    """Presence of the user and everyone sharing a joined room with them, changed in
    (since, upto] (all of it when since is None). One query."""
    qs = Presence.objects.filter(
        Q(user_id=user_id) | Q(user_id__in=_shared_room_users(user_id)),
        stream_ordering__lte=upto,
    )
    if since is not None:
        qs = qs.filter(stream_ordering__gt=since)
    return [PresenceRow(*r) for r in qs.values_list(*_COLUMNS)]


def shares_room(user_id: str, other: str) -> bool:
    return _shared_room_users(user_id).filter(state_key=other).exists()


def delete_presence(user_id: str) -> None:
    Presence.objects.filter(user_id=user_id).delete()
