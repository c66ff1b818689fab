"""Push rules (stored per user) and pushers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from homeserver.models import Device, Pusher, PushRuleSet


@dataclass(frozen=True)
class PusherRecord:
    id: int
    user_id: str
    kind: str
    app_id: str
    pushkey: str
    app_display_name: str
    device_display_name: str
    profile_tag: str
    lang: str
    data: dict[str, Any]
    pushkey_ts: int


_PUSHER_COLUMNS = ("id", "user_id", "kind", "app_id", "pushkey", "app_display_name",
                   "device_display_name", "profile_tag", "lang", "data", "pushkey_ts")


# --- push rules -----------------------------------------------------------------------------


def get_ruleset(user_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    qs = PushRuleSet.objects.filter(user_id=user_id)
    if for_update:
        qs = qs.select_for_update()
    return qs.values_list("data", flat=True).first()


def lock_ruleset(user_id: str) -> dict[str, Any] | None:
    """The stored rules, with the row locked for the caller's transaction (created empty if
    missing, so concurrent edits of one user's rules queue instead of losing one another)."""
    PushRuleSet.objects.get_or_create(user_id=user_id, defaults={"data": {}})
    return get_ruleset(user_id, for_update=True) or None


def put_ruleset(user_id: str, data: dict[str, Any]) -> None:
    PushRuleSet.objects.update_or_create(user_id=user_id, defaults={"data": data})


def rulesets_for(user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    return dict(
        PushRuleSet.objects.filter(user_id__in=list(user_ids)).values_list("user_id", "data")
    )


# --- pushers --------------------------------------------------------------------------------


def device_pk(user_id: str, device_id: str | None) -> int | None:
    if not device_id:
        return None
    return (
        Device.objects.filter(user_id=user_id, device_id=device_id)
        .values_list("id", flat=True)
        .first()
    )


def pushers_of(user_id: str) -> list[PusherRecord]:
    rows = Pusher.objects.filter(user_id=user_id).order_by("id").values_list(*_PUSHER_COLUMNS)
    return [PusherRecord(*r) for r in rows]


def pushers_for_users(user_ids: Iterable[str]) -> list[PusherRecord]:
    rows = (
        Pusher.objects.filter(user_id__in=list(user_ids), kind="http")
        .order_by("id")
        .values_list(*_PUSHER_COLUMNS)
    )
    return [PusherRecord(*r) for r in rows]


def get_pusher(pusher_id: int) -> PusherRecord | None:
    row = Pusher.objects.filter(id=pusher_id).values_list(*_PUSHER_COLUMNS).first()
    return PusherRecord(*row) if row else None


def upsert_pusher(*, user_id: str, device: int | None, kind: str, app_id: str, pushkey: str,
                  app_display_name: str, device_display_name: str, profile_tag: str, lang: str,
                  data: dict[str, Any], pushkey_ts: int) -> bool:
    """Create or update the user's (app_id, pushkey) pusher; True if it was created."""
    _, created = Pusher.objects.update_or_create(
        user_id=user_id, app_id=app_id, pushkey=pushkey,
        defaults={"device_id": device, "kind": kind, "app_display_name": app_display_name,
                  "device_display_name": device_display_name, "profile_tag": profile_tag,
                  "lang": lang, "data": data, "pushkey_ts": pushkey_ts},
    )
    return created


def delete_pusher(user_id: str, app_id: str, pushkey: str) -> int:
    return Pusher.objects.filter(user_id=user_id, app_id=app_id, pushkey=pushkey).delete()[0]


def delete_others_pushers(user_id: str, app_id: str, pushkey: str) -> list[str]:
    """Spec POST /pushers/set with append=false: the (app_id, pushkey) pushers of OTHER users
    go. Returns their users."""
    qs = Pusher.objects.filter(app_id=app_id, pushkey=pushkey).exclude(user_id=user_id)
    users = sorted(set(qs.values_list("user_id", flat=True)))
    qs.delete()
    return users



def delete_user_push_data(user_id: str, *, rules: bool) -> None:
    """Deactivation: the account's pushers; with `rules` (erasure) its push rules too."""
    Pusher.objects.filter(user_id=user_id).delete()
    if rules:
        PushRuleSet.objects.filter(user_id=user_id).delete()
