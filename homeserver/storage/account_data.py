"""Per-user data: profiles and account data (global and per room). Filters: storage/filters.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.models import AccountData, Filter, Profile


@dataclass(frozen=True)
class ProfileRecord:
    displayname: str  # "" = not set
    avatar_url: str  # "" = not set


# --- profiles -------------------------------------------------------------------------------


def get_profile(user_id: str) -> ProfileRecord | None:
    """The local user's profile, or None if there is no such local user."""
    row = Profile.objects.filter(user_id=user_id).values_list("displayname", "avatar_url").first()
    return ProfileRecord(*row) if row else None


def set_profile_field(user_id: str, field: str, value: str) -> None:
    if field not in ("displayname", "avatar_url"):
        raise ValueError(field)
    Profile.objects.filter(user_id=user_id).update(**{field: value})


def clear_profile(user_id: str) -> None:
    Profile.objects.filter(user_id=user_id).update(displayname="", avatar_url="")


def delete_user_data(user_id: str) -> None:
    """Erasure: the user's account data and stored filters."""
    AccountData.objects.filter(user_id=user_id).delete()
    Filter.objects.filter(user_id=user_id).delete()


# --- account data ---------------------------------------------------------------------------


def get_account_data(user_id: str, room_id: str, data_type: str) -> dict[str, Any] | None:
    return (
        AccountData.objects.filter(user_id=user_id, room_id=room_id, type=data_type)
        .values_list("content", flat=True)
        .first()
    )


def put_account_data(
    user_id: str, room_id: str, data_type: str, content: dict[str, Any], stream_ordering: int
) -> None:
    AccountData.objects.update_or_create(
        user_id=user_id,
        room_id=room_id,
        type=data_type,
        defaults={"content": content, "stream_ordering": stream_ordering},
    )


def account_data_changes(
    user_id: str, since: int | None, upto: int
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, dict[str, Any]]]]:
    """Account data written in (since, upto] (all of it when since is None), for /sync:
    (global type -> content, room_id -> type -> content)."""
    qs = AccountData.objects.filter(user_id=user_id, stream_ordering__lte=upto)
    if since is not None:
        qs = qs.filter(stream_ordering__gt=since)
    global_data: dict[str, dict[str, Any]] = {}
    rooms: dict[str, dict[str, dict[str, Any]]] = {}
    for room_id, data_type, content in qs.values_list("room_id", "type", "content"):
        if room_id:
            rooms.setdefault(room_id, {})[data_type] = content
        else:
            global_data[data_type] = content
    return global_data, rooms
