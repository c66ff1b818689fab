"""Room aliases on this server."""

from __future__ import annotations

from homeserver.models import RoomAlias


def resolve_alias(alias: str) -> str | None:
    return RoomAlias.objects.filter(alias=alias).values_list("room_id", flat=True).first()


def alias_exists(alias: str) -> bool:
    return RoomAlias.objects.filter(alias=alias).exists()


def create_alias(alias: str, room_id: str, creator: str) -> None:
    RoomAlias.objects.create(alias=alias, room_id=room_id, creator=creator)
