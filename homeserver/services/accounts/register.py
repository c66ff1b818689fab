"""Creating accounts: POST /register (user-interactive), availability, registration tokens, and
the account-creation step shared with shared-secret registration and `manage.py create_user`.

Spec: client-server API "POST /_matrix/client/v3/register", "GET /register/available",
"Token-authenticated registration" and "GET /register/m.login.registration_token/validity".
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts import uia
from homeserver.services.accounts.passwords import check_new_password, hash_password
from homeserver.services.accounts.sessions import (
    IssuedSession,
    check_device_id,
    check_device_name,
    now_ms,
    start_session,
)
from homeserver.services.accounts.user_ids import check_username, local_user_id, server_name
from homeserver.services.ratelimit import check_rate_limit
from homeserver.storage import accounts as account_store
from homeserver.storage import registration as reg_store


def check_registration_enabled() -> None:
    if not settings.PALISADE.registration.enabled:
        raise MatrixError(403, Errcode.FORBIDDEN, "Registration is disabled on this server")


def registration_flows() -> list[list[str]]:
    if settings.PALISADE.registration.require_token:
        return [[uia.REGISTRATION_TOKEN]]
    return [[uia.DUMMY]]


def check_username_available(username: object) -> str:
    """The full user ID for a requested username, or 400 M_INVALID_USERNAME / M_USER_IN_USE."""
    user_id = check_username(username)
    if account_store.account_exists(user_id):
        raise MatrixError(400, Errcode.USER_IN_USE, "User ID already taken")
    return user_id


def _generated_user_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    for _ in range(10):
        candidate = local_user_id("u" + "".join(secrets.choice(alphabet) for _ in range(11)))
        if not account_store.account_exists(candidate):
            return candidate
    raise MatrixError(500, Errcode.UNKNOWN, "Could not allocate a user ID")


def insert_account(
    user_id: str, *, password_hash: str, is_admin: bool = False, displayname: str | None = None,
    actor: str | None = None, actor_type: ActorType = ActorType.USER, method: str,
) -> None:
    """Create the account and its profile and audit USER_CREATED, in the caller's transaction.
    Hash the password before opening the transaction (hashing is deliberately slow)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("insert_account must run inside transaction.atomic()")
    localpart = user_id[1:].split(":", 1)[0]
    try:
        with transaction.atomic():  # savepoint: a lost race is M_USER_IN_USE, not a 500
            account_store.create_account(
                user_id=user_id, localpart=localpart, password_hash=password_hash,
                is_admin=is_admin, now=now_ms(), displayname=displayname or localpart,
            )
    except IntegrityError:
        raise MatrixError(400, Errcode.USER_IN_USE, "User ID already taken") from None
    record(AuditAction.USER_CREATED, actor=actor or user_id, actor_type=actor_type,
           target=user_id, details={"admin": is_admin, "method": method})


def do_register(body: dict[str, Any], *, kind: str = "user", ip: str = "") -> dict[str, Any]:
    """POST /register. Validates everything before the user-interactive auth so a client learns
    about a taken or invalid username at its first request, and again (racing registrations)
    inside the transaction that creates the account, device and tokens together."""
    check_registration_enabled()
    if kind == "guest":
        raise MatrixError(403, Errcode.GUEST_ACCESS_FORBIDDEN, "Guest access is disabled")
    if kind != "user":
        raise MatrixError(400, Errcode.INVALID_PARAM, "kind must be 'user' or 'guest'")
    check_rate_limit("registration", f"ip:{ip}")
    username = body.get("username")
    user_id = check_username_available(username) if username is not None else None
    password = body.get("password")
    if password is not None:
        check_new_password(password)
    inhibit_login = body.get("inhibit_login", False)
    if not isinstance(inhibit_login, bool):
        raise MatrixError(400, Errcode.BAD_JSON, "inhibit_login must be a boolean")
    device_id = body.get("device_id")
    if device_id is not None:
        check_device_id(device_id)
    display_name = check_device_name(body.get("initial_device_display_name"))
    result = uia.authenticate(body.get("auth"), operation="POST /register",
                              flows=registration_flows())
    password_hash = hash_password(password) if password is not None else ""
    user_id = user_id or _generated_user_id()
    with transaction.atomic():
        uia.consume(result)
        insert_account(user_id, password_hash=password_hash, method="register")
        session = None
        if not inhibit_login:
            session = start_session(user_id, device_id=device_id, display_name=display_name,
                                    refreshable=body.get("refresh_token") is True)
    if session is None:
        return {"user_id": user_id, "home_server": server_name()}
    return session.login_response(server_name())


def check_available(username: object, *, ip: str = "") -> dict[str, Any]:
    """GET /register/available. Refused while registration is closed, so it cannot be used to
    enumerate the users of a closed server."""
    check_registration_enabled()
    # Own bucket: a registration form checks names as the user types.
    check_rate_limit("registration", f"query:{ip}")
    check_username_available(username)
    return {"available": True}


def check_token_validity(token: object, *, ip: str = "") -> dict[str, Any]:
    """GET /register/m.login.registration_token/validity."""
    check_registration_enabled()
    check_rate_limit("registration", f"query:{ip}")
    if not isinstance(token, str) or not token:
        raise MatrixError(400, Errcode.MISSING_PARAM, "token is required")
    if len(token) > uia.MAX_REGISTRATION_TOKEN_LENGTH:
        return {"valid": False}
    return {"valid": reg_store.registration_token_usable(token, now_ms())}


def create_user(
    localpart: str, *, password: str | None, is_admin: bool = False,
    displayname: str | None = None, actor: str, actor_type: ActorType, method: str,
    login: bool = False, device_display_name: str = "",
) -> tuple[str, IssuedSession | None]:
    """Create a user as an operator (management command, shared-secret registration)."""
    user_id = check_username_available(localpart)
    if password is not None:
        check_new_password(password)
    password_hash = hash_password(password) if password is not None else ""
    with transaction.atomic():
        insert_account(user_id, password_hash=password_hash, is_admin=is_admin,
                       displayname=displayname, actor=actor, actor_type=actor_type,
                       method=method)
        session = None
        if login:
            session = start_session(user_id, device_id=None, display_name=device_display_name,
                                    refreshable=False, actor=actor, actor_type=actor_type)
    return user_id, session
