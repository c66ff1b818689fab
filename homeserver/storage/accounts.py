"""Accounts, devices and their access/refresh tokens (tokens by SHA-256 hash only)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from homeserver.models import AccessToken, Account, Device, Profile, RefreshToken


@dataclass(frozen=True)
class AccountRecord:
    user_id: str
    password_hash: str
    is_admin: bool
    deactivated: bool
    erased: bool


@dataclass(frozen=True)
class DeviceRecord:
    device_id: str
    display_name: str
    last_seen_ts: int | None
    last_seen_ip: str


@dataclass(frozen=True)
class TokenRecord:
    """What authenticating a request needs, fetched with one query (token joined to account
    and device)."""

    token_id: int
    user_id: str
    device_pk: int
    device_id: str
    valid_until_ms: int | None
    used: bool
    refresh_token_id: int | None
    is_admin: bool
    deactivated: bool
    last_seen_ts: int | None
    last_seen_ip: str


@dataclass(frozen=True)
class RefreshRecord:
    token_id: int
    user_id: str
    device_pk: int
    device_id: str
    next_token_id: int | None
    deactivated: bool


_ACCOUNT_FIELDS = ("user_id", "password_hash", "is_admin", "deactivated", "erased")
_DEVICE_FIELDS = ("device_id", "display_name", "last_seen_ts", "last_seen_ip")


# --- accounts -------------------------------------------------------------------------------


def get_account(user_id: str) -> AccountRecord | None:
    row = Account.objects.filter(user_id=user_id).values_list(*_ACCOUNT_FIELDS).first()
    return AccountRecord(*row) if row else None


def lock_account(user_id: str) -> AccountRecord | None:
    """SELECT ... FOR UPDATE: serialises changes to one account (use inside a transaction)."""
    row = (
        Account.objects.select_for_update()
        .filter(user_id=user_id)
        .values_list(*_ACCOUNT_FIELDS)
        .first()
    )
    return AccountRecord(*row) if row else None


def account_exists(user_id: str) -> bool:
    return Account.objects.filter(user_id=user_id).exists()


def create_account(
    *,
    user_id: str,
    localpart: str,
    password_hash: str,
    is_admin: bool,
    now: int,
    displayname: str,
) -> None:
    """Raises IntegrityError when the user ID is taken (the unique index decides races)."""
    Account.objects.create(
        user_id=user_id,
        localpart=localpart,
        password_hash=password_hash,
        is_admin=is_admin,
        created_ts=now,
    )
    Profile.objects.create(user_id=user_id, displayname=displayname)


def set_password_hash(user_id: str, password_hash: str) -> None:
    Account.objects.filter(user_id=user_id).update(password_hash=password_hash)


def mark_deactivated(user_id: str, *, erased: bool) -> None:
    fields: dict = {"deactivated": True, "password_hash": ""}
    if erased:
        fields["erased"] = True
    Account.objects.filter(user_id=user_id).update(**fields)


# --- devices --------------------------------------------------------------------------------


def get_device(user_id: str, device_id: str) -> DeviceRecord | None:
    row = (
        Device.objects.filter(user_id=user_id, device_id=device_id)
        .values_list(*_DEVICE_FIELDS)
        .first()
    )
    return DeviceRecord(*row) if row else None


def device_pk(user_id: str, device_id: str) -> int | None:
    return (
        Device.objects.filter(user_id=user_id, device_id=device_id)
        .values_list("id", flat=True)
        .first()
    )


def list_devices(user_id: str) -> list[DeviceRecord]:
    rows = Device.objects.filter(user_id=user_id).order_by("device_id").values_list(*_DEVICE_FIELDS)
    return [DeviceRecord(*r) for r in rows]


def create_device(*, user_id: str, device_id: str, display_name: str, now: int) -> int:
    return Device.objects.create(
        user_id=user_id, device_id=device_id, display_name=display_name, created_ts=now
    ).id


def set_device_display_name(user_id: str, device_id: str, display_name: str) -> bool:
    return bool(
        Device.objects.filter(user_id=user_id, device_id=device_id).update(
            display_name=display_name
        )
    )


def touch_device(pk: int, *, ts: int, ip: str) -> None:
    Device.objects.filter(id=pk).update(last_seen_ts=ts, last_seen_ip=ip)


def delete_devices(user_id: str, device_ids: Iterable[str] | None, *, keep: str = "") -> list[str]:
    """Delete the user's devices (all of them when `device_ids` is None, except `keep`) and,
    by cascade, their access and refresh tokens. Returns the device IDs that existed."""
    qs = Device.objects.filter(user_id=user_id)
    if device_ids is not None:
        qs = qs.filter(device_id__in=list(device_ids))
    if keep:
        qs = qs.exclude(device_id=keep)
    found = sorted(qs.values_list("device_id", flat=True))
    if found:
        Device.objects.filter(user_id=user_id, device_id__in=found).delete()
    return found


# --- tokens ---------------------------------------------------------------------------------


def insert_access_token(
    *,
    user_id: str,
    device_pk: int,
    token_hash: str,
    valid_until_ms: int | None,
    refresh_token_id: int | None,
    now: int,
) -> int:
    return AccessToken.objects.create(
        user_id=user_id,
        device_id=device_pk,
        token_hash=token_hash,
        valid_until_ms=valid_until_ms,
        refresh_token_id=refresh_token_id,
        used=refresh_token_id is None,
        created_ts=now,
    ).id


def insert_refresh_token(*, user_id: str, device_pk: int, token_hash: str, now: int) -> int:
    return RefreshToken.objects.create(
        user_id=user_id, device_id=device_pk, token_hash=token_hash, created_ts=now
    ).id


def lookup_access_token(token_hash: str) -> TokenRecord | None:
    """The one query per authenticated request: unique-index lookup joined to account+device.
    Raw SQL: it runs on every request, and the ORM's query building cost more CPU than the
    query itself (docs/benchmarks.md)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT t.id, t.user_id, t.device_id, d.device_id, t.valid_until_ms, t.used, "
            "t.refresh_token_id, a.is_admin, a.deactivated, d.last_seen_ts, d.last_seen_ip "
            "FROM access_tokens t JOIN accounts a ON a.user_id = t.user_id "
            "JOIN devices d ON d.id = t.device_id WHERE t.token_hash = %s",
            [token_hash],
        )
        row = cur.fetchone()
    if row is None:
        return None
    (token_id, user_id, device_pk, device_id, valid_until, used, refresh_id, is_admin,
     deactivated, last_seen_ts, last_seen_ip) = row
    return TokenRecord(token_id, user_id, device_pk, device_id, valid_until, bool(used),
                       refresh_id, bool(is_admin), bool(deactivated), last_seen_ts, last_seen_ip)


def mark_access_token_used(token_id: int, refresh_token_id: int) -> None:
    """First use of a token issued by /refresh: the refresh token that produced it is spent
    (deleting it cascades to the access token issued alongside it)."""
    AccessToken.objects.filter(id=token_id).update(used=True)
    RefreshToken.objects.filter(next_token_id=refresh_token_id).delete()


def delete_device_tokens(device_pk: int) -> None:
    """Invalidate every access and refresh token of a device (login reusing a device_id)."""
    AccessToken.objects.filter(device_id=device_pk).delete()
    RefreshToken.objects.filter(device_id=device_pk).delete()


def lock_refresh_token(token_hash: str) -> RefreshRecord | None:
    row = (
        RefreshToken.objects.select_for_update()
        .filter(token_hash=token_hash)
        .values_list(
            "id",
            "user_id",
            "device_id",
            "device__device_id",
            "next_token_id",
            "user__deactivated",
        )
        .first()
    )
    return RefreshRecord(*row) if row else None


def rotate_refresh_token(old: RefreshRecord, new_id: int) -> None:
    """Link `old` to its successor `new_id`. A successor issued earlier but never used (the
    client lost the response and retried) is discarded with its access token; the token that
    produced `old` is spent now that `old` is being used."""
    if old.next_token_id is not None:
        RefreshToken.objects.filter(id=old.next_token_id).delete()
    RefreshToken.objects.filter(id=old.token_id).update(next_token_id=new_id)
    RefreshToken.objects.filter(Q(next_token_id=old.token_id) & ~Q(id=old.token_id)).delete()
