"""Room aliases on this server."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from homeserver.models import RoomAlias


@dataclass(frozen=True)
class AliasRecord:
    alias: str
    room_id: str
    creator: str


def resolve_alias(alias: str) -> str | None:
    return RoomAlias.objects.filter(alias=alias).values_list("room_id", flat=True).first()


def alias_exists(alias: str) -> bool:
    return RoomAlias.objects.filter(alias=alias).exists()


def create_alias(alias: str, room_id: str, creator: str) -> None:
    RoomAlias.objects.create(alias=alias, room_id=room_id, creator=creator)


def try_create_alias(alias: str, room_id: str, creator: str) -> bool:
    """Insert the mapping; False (and nothing written) when the alias is already taken, even by
    a concurrent writer (the primary key decides)."""
    try:
        with transaction.atomic():
            create_alias(alias, room_id, creator)
    except IntegrityError:
        return False
    return True


def get_alias(alias: str) -> AliasRecord | None:
    row = RoomAlias.objects.filter(alias=alias).values_list("alias", "room_id", "creator").first()
    return AliasRecord(*row) if row else None


def delete_alias(alias: str) -> bool:
    deleted, _ = RoomAlias.objects.filter(alias=alias).delete()
    return deleted > 0


def aliases_for_room(room_id: str) -> list[str]:
    return sorted(RoomAlias.objects.filter(room_id=room_id).values_list("alias", flat=True))


def existing_aliases(aliases: list[str]) -> dict[str, str]:
    """alias -> room_id for those of `aliases` that exist."""
    return dict(RoomAlias.objects.filter(alias__in=aliases).values_list("alias", "room_id"))


def move_aliases(old_room_id: str, new_room_id: str) -> list[str]:
    """Point every alias of the old room at the new one; returns the aliases moved."""
    moved = aliases_for_room(old_room_id)
    RoomAlias.objects.filter(room_id=old_room_id).update(room_id=new_room_id)
    return moved
