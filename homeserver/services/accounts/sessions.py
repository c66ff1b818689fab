"""Devices and the tokens that authenticate them: issue, authenticate, refresh, revoke.

Spec: client-server API "Client Authentication" ("Using access tokens", "Relationship between
access tokens and devices", "Refreshing access tokens", "Soft logout").

A token is 32 random bytes (URL-safe Base64) behind a short prefix; the database keeps only its
SHA-256, so neither a dump nor a query log grants a session.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.storage import accounts as store

ACCESS_PREFIX = "pal_"
REFRESH_PREFIX = "palr_"
# Lifetime of access tokens issued to clients that asked for refresh tokens.
REFRESHABLE_TOKEN_LIFETIME_MS = 5 * 60 * 1000
# A device's last_seen_* is written at most this often (and when its address changes).
LAST_SEEN_GRANULARITY_MS = 5 * 60 * 1000
MAX_DEVICE_ID_LENGTH = 255
MAX_DEVICE_NAME_LENGTH = 512

# Called as hook(user_id, device_ids) inside the transaction that deletes devices, so data
# other modules keep per device (end-to-end keys, to-device queues) goes with them.
DEVICES_REMOVED_HOOKS: list[Callable[[str, list[str]], None]] = []
# Called as hook(user_id, device_id) inside the transaction that creates a new device (a new
# device is a device-list change other users' clients must learn about).
DEVICE_ADDED_HOOKS: list[Callable[[str, str], None]] = []


def now_ms() -> int:
    return int(time.time() * 1000)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token(prefix: str) -> tuple[str, str]:
    raw = prefix + secrets.token_urlsafe(32)
    return raw, hash_token(raw)


def new_device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(10))


def check_device_id(device_id: object) -> str:
    if not isinstance(device_id, str) or not device_id or len(device_id) > MAX_DEVICE_ID_LENGTH:
        raise MatrixError(400, Errcode.INVALID_PARAM, "device_id must be a 1-255 character string")
    if not device_id.isprintable():
        raise MatrixError(400, Errcode.INVALID_PARAM, "device_id must be printable text")
    return device_id


def check_device_name(name: object) -> str:
    if name is None:
        return ""
    if not isinstance(name, str) or len(name) > MAX_DEVICE_NAME_LENGTH:
        raise MatrixError(
            400, Errcode.INVALID_PARAM, "Device display name must be a string of at most 512"
        )
    return name


@dataclass(frozen=True)
class IssuedSession:
    user_id: str
    device_id: str
    access_token: str
    refresh_token: str | None
    expires_in_ms: int | None

    def login_response(self, server_name: str) -> dict:
        body: dict = {
            "user_id": self.user_id,
            "access_token": self.access_token,
            "device_id": self.device_id,
            "home_server": server_name,  # deprecated in the spec, still read by older clients
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
            body["expires_in_ms"] = self.expires_in_ms
        return body


def _issue_tokens(user_id: str, device_pk: int, *, refreshable: bool, now: int,
                  ) -> tuple[str, str | None, int | None]:
    refresh_raw = refresh_id = None
    if refreshable:
        refresh_raw, refresh_hash = _new_token(REFRESH_PREFIX)
        refresh_id = store.insert_refresh_token(
            user_id=user_id, device_pk=device_pk, token_hash=refresh_hash, now=now
        )
    access_raw, access_hash = _new_token(ACCESS_PREFIX)
    lifetime = REFRESHABLE_TOKEN_LIFETIME_MS if refreshable else None
    store.insert_access_token(
        user_id=user_id, device_pk=device_pk, token_hash=access_hash,
        valid_until_ms=now + lifetime if lifetime else None, refresh_token_id=refresh_id, now=now,
    )
    return access_raw, refresh_raw, lifetime


def start_session(
    user_id: str, *, device_id: str | None, display_name: str, refreshable: bool,
    actor_type: ActorType = ActorType.USER, actor: str | None = None,
) -> IssuedSession:
    """Create (or take over) a device and give it fresh tokens. Runs inside the caller's
    transaction; audits DEVICE_ADDED for a new device.

    Spec: "Relationship between access tokens and devices": a client may pass its own device_id;
    reusing one invalidates every access and refresh token previously assigned to it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("start_session must run inside transaction.atomic()")
    now = now_ms()
    pk = store.device_pk(user_id, device_id) if device_id else None
    if pk is not None:
        store.delete_device_tokens(pk)
    else:
        device_id = device_id or new_device_id()
        pk = store.create_device(
            user_id=user_id, device_id=device_id, display_name=display_name, now=now
        )
        record(AuditAction.DEVICE_ADDED, actor=actor or user_id, actor_type=actor_type,
               target=user_id, details={"device_id": device_id})
        for hook in DEVICE_ADDED_HOOKS:
            hook(user_id, device_id)
    assert device_id is not None
    access, refresh, lifetime = _issue_tokens(user_id, pk, refreshable=refreshable, now=now)
    return IssuedSession(user_id, device_id, access, refresh, lifetime)


@dataclass(frozen=True)
class Authenticated:
    user_id: str
    device_id: str
    is_admin: bool
    access_token_id: int


def authenticate_token(token: str, *, ip: str = "") -> Authenticated:
    """Resolve an access token: one indexed query (token joined to account and device), plus a
    write only on a refreshed token's first use or when the device's last-seen info is stale.

    Spec: "Using access tokens" / "Soft logout": an expired token is M_UNKNOWN_TOKEN with
    soft_logout true (refresh or log in again to the same device); an unknown token, or one of
    a deactivated account, is M_UNKNOWN_TOKEN without it."""
    rec = store.lookup_access_token(hash_token(token))
    if rec is None or rec.deactivated:
        raise MatrixError(401, Errcode.UNKNOWN_TOKEN, "Unrecognised access token")
    now = now_ms()
    if rec.valid_until_ms is not None and rec.valid_until_ms <= now:
        raise MatrixError(401, Errcode.UNKNOWN_TOKEN, "Access token has expired",
                          soft_logout=True)
    if not rec.used and rec.refresh_token_id is not None:
        with transaction.atomic():
            store.mark_access_token_used(rec.token_id, rec.refresh_token_id)
    ip = ip[:64]
    if (
        rec.last_seen_ts is None
        or now - rec.last_seen_ts >= LAST_SEEN_GRANULARITY_MS
        or (ip and ip != rec.last_seen_ip)
    ):
        store.touch_device(rec.device_pk, ts=now, ip=ip or rec.last_seen_ip)
    return Authenticated(rec.user_id, rec.device_id, rec.is_admin, rec.token_id)


def do_refresh(refresh_token: str) -> dict:
    """POST /refresh: a new access token and a new refresh token for the same device.

    Spec: "Refreshing access tokens": the old refresh token remains valid until the new access
    token or refresh token is used, then it is revoked."""
    if not isinstance(refresh_token, str) or not refresh_token:
        raise MatrixError(400, Errcode.MISSING_PARAM, "refresh_token is required")
    with transaction.atomic():
        old = store.lock_refresh_token(hash_token(refresh_token))
        if old is None or old.deactivated:
            raise MatrixError(401, Errcode.UNKNOWN_TOKEN, "Unknown or already used refresh token")
        now = now_ms()
        refresh_raw, refresh_hash = _new_token(REFRESH_PREFIX)
        new_id = store.insert_refresh_token(
            user_id=old.user_id, device_pk=old.device_pk, token_hash=refresh_hash, now=now
        )
        store.rotate_refresh_token(old, new_id)
        access_raw, access_hash = _new_token(ACCESS_PREFIX)
        store.insert_access_token(
            user_id=old.user_id, device_pk=old.device_pk, token_hash=access_hash,
            valid_until_ms=now + REFRESHABLE_TOKEN_LIFETIME_MS, refresh_token_id=new_id, now=now,
        )
    return {
        "access_token": access_raw,
        "refresh_token": refresh_raw,
        "expires_in_ms": REFRESHABLE_TOKEN_LIFETIME_MS,
    }


def remove_devices(
    user_id: str, device_ids: list[str] | None, *, keep: str = "", actor: str | None = None,
    actor_type: ActorType = ActorType.USER, reason: str,
) -> list[str]:
    """Delete devices (and, by cascade, their tokens) inside the caller's transaction, auditing
    each. `device_ids=None` means all of the user's devices except `keep`."""
    removed = store.delete_devices(user_id, device_ids, keep=keep)
    if removed:
        for hook in DEVICES_REMOVED_HOOKS:
            hook(user_id, removed)
    for device_id in removed:
        record(AuditAction.DEVICE_REMOVED, actor=actor or user_id, actor_type=actor_type,
               target=user_id, details={"device_id": device_id, "reason": reason})
    return removed


def do_logout(user_id: str, device_id: str) -> None:
    """POST /logout: the token's device is deleted with every token it has.
    Spec: "POST /_matrix/client/v3/logout"."""
    with transaction.atomic():
        remove_devices(user_id, [device_id], reason="logout")
        record(AuditAction.LOGOUT, actor=user_id, target=user_id,
               details={"device_id": device_id, "all_devices": False})


def do_logout_all(user_id: str) -> None:
    """POST /logout/all: every device and token of the user."""
    with transaction.atomic():
        removed = remove_devices(user_id, None, reason="logout_all")
        record(AuditAction.LOGOUT, actor=user_id, target=user_id,
               details={"all_devices": True, "devices": len(removed)})
