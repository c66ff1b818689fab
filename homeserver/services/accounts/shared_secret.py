"""Shared-secret registration: the operator API that Synapse's `register_new_matrix_user` and
many deployment tools speak (GET/POST /_synapse/admin/v1/register).

GET returns a single-use nonce valid for NONCE_LIFETIME_MS. POST carries the nonce, username,
password, admin flag and `mac` = hex HMAC-SHA1, keyed with `registration_shared_secret`, over
nonce NUL username NUL password NUL ("admin" | "notadmin"). The nonce is spent by the first
POST naming it, whatever the outcome, so a MAC cannot be guessed against one nonce repeatedly.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction

from audit.actions import ActorType
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts.register import create_user
from homeserver.services.accounts.sessions import now_ms
from homeserver.services.accounts.user_ids import server_name
from homeserver.storage import registration as reg_store

NONCE_LIFETIME_MS = 60 * 1000
ACTOR = "shared_secret_registration"


def _secret() -> bytes:
    secret = settings.PALISADE.registration_shared_secret
    if not secret:
        raise MatrixError(400, Errcode.UNKNOWN, "Shared secret registration is not enabled")
    return secret.encode("utf-8")


def new_nonce() -> dict[str, str]:
    _secret()
    nonce = secrets.token_hex(32)
    now = now_ms()
    with transaction.atomic():
        reg_store.purge_nonces(now - NONCE_LIFETIME_MS)
        reg_store.insert_nonce(nonce, now)
    return {"nonce": nonce}


def registration_mac(secret: bytes, nonce: str, username: str, password: str,
                     admin: bool) -> str:
    mac = hmac.new(secret, digestmod=hashlib.sha1)
    for part in (nonce, username, password):
        mac.update(part.encode("utf-8"))
        mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    return mac.hexdigest()


def do_shared_secret_register(body: dict[str, Any]) -> dict[str, Any]:
    secret = _secret()
    nonce = body.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise MatrixError(400, Errcode.MISSING_PARAM, "nonce is required")
    if len(nonce) > 64 or not reg_store.consume_nonce(
        nonce, not_before=now_ms() - NONCE_LIFETIME_MS
    ):
        raise MatrixError(400, Errcode.UNKNOWN, "Unrecognised or expired nonce")
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not username:
        raise MatrixError(400, Errcode.INVALID_PARAM, "username must be a non-empty string")
    if not isinstance(password, str) or not password:
        raise MatrixError(400, Errcode.INVALID_PARAM, "password must be a non-empty string")
    admin = body.get("admin", False)
    if not isinstance(admin, bool):
        raise MatrixError(400, Errcode.INVALID_PARAM, "admin must be a boolean")
    if body.get("user_type") is not None:
        raise MatrixError(400, Errcode.INVALID_PARAM, "user_type is not supported")
    displayname = body.get("displayname")
    if displayname is not None and not isinstance(displayname, str):
        raise MatrixError(400, Errcode.INVALID_PARAM, "displayname must be a string")
    mac = body.get("mac")
    if not isinstance(mac, str):
        raise MatrixError(400, Errcode.MISSING_PARAM, "mac is required")
    want = registration_mac(secret, nonce, username, password, admin)
    if not hmac.compare_digest(want.encode("ascii"), mac.lower().encode("utf-8")):
        raise MatrixError(403, Errcode.FORBIDDEN, "HMAC incorrect")
    user_id, session = create_user(
        username, password=password, is_admin=admin, displayname=displayname, actor=ACTOR,
        actor_type=ActorType.ADMIN, method="shared_secret", login=True,
    )
    assert session is not None
    return {
        "user_id": user_id,
        "access_token": session.access_token,
        "device_id": session.device_id,
        "home_server": server_name(),
    }
