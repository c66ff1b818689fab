"""Rooms a user has forgotten (spec: POST /rooms/{roomId}/forget)."""

from __future__ import annotations

from homeserver.models import ForgottenRoom


def mark_forgotten(user_id: str, room_id: str) -> None:
    ForgottenRoom.objects.get_or_create(user_id=user_id, room_id=room_id)


def forgotten_rooms(user_id: str) -> set[str]:
    return set(ForgottenRoom.objects.filter(user_id=user_id).values_list("room_id", flat=True))


def unforget(user_id: str, room_id: str) -> None:
    ForgottenRoom.objects.filter(user_id=user_id, room_id=room_id).delete()
