"""POST /login with a password (GET /login lists the flows).

Spec: client-server API "Login" and "POST /_matrix/client/v3/login": unknown login types are
400 M_UNKNOWN, wrong credentials 403 M_FORBIDDEN, limits 429 M_LIMIT_EXCEEDED.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from audit.actions import AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts.passwords import password_matches
from homeserver.services.accounts.sessions import (
    check_device_id,
    check_device_name,
    start_session,
)
from homeserver.services.accounts.user_ids import server_name, user_from_identifier
from homeserver.services.ratelimit import check_rate_limit
from homeserver.storage import accounts as account_store

PASSWORD_LOGIN = "m.login.password"
# Other modules (OIDC login) append their flows here; the order is the order clients see.
LOGIN_FLOWS: list[dict[str, Any]] = [{"type": PASSWORD_LOGIN}]
# Login types other modules implement (idp: m.login.token, JWT login): type ->
# fn(body, *, ip) -> the login response, or None to go on with the built-in handling (idp
# registers one for m.login.password that refuses when password login is switched off).
LOGIN_HANDLERS: dict[str, Callable[..., dict[str, Any] | None]] = {}
# fn(flows) -> flows, applied in order at request time (configuration may change the flows).
LOGIN_FLOW_FILTERS: list[Callable[[list[dict[str, Any]]], list[dict[str, Any]]]] = []


def login_flows() -> dict[str, Any]:
    flows = list(LOGIN_FLOWS)
    for fn in LOGIN_FLOW_FILTERS:
        flows = fn(flows)
    return {"flows": flows}


def _attempted(body: dict[str, Any]) -> str:
    """What the client typed as the user, for the audit record of a failure (never the
    password)."""
    ident = body.get("identifier")
    user = ident.get("user") if isinstance(ident, dict) else body.get("user")
    return user[:255] if isinstance(user, str) else ""


def _fail(target: str, reason: str) -> MatrixError:
    with transaction.atomic():
        record(AuditAction.LOGIN_FAILED, actor=target, target=target,
               details={"reason": reason, "method": PASSWORD_LOGIN})
    return MatrixError(403, Errcode.FORBIDDEN, "Invalid username or password")


def do_login(body: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    login_type = body.get("type")
    if isinstance(login_type, str) and login_type in LOGIN_HANDLERS:
        handled = LOGIN_HANDLERS[login_type](body, ip=ip)
        if handled is not None:
            return handled
    if login_type != PASSWORD_LOGIN:
        raise MatrixError(400, Errcode.UNKNOWN, f"Unknown login type {login_type!r}")
    check_rate_limit("login", f"ip:{ip}")
    user_id = user_from_identifier(body)
    password = body.get("password")
    if not isinstance(password, str):
        raise MatrixError(400, Errcode.BAD_JSON, "password must be a string")
    device_id = body.get("device_id")
    if device_id is not None:
        check_device_id(device_id)
    display_name = check_device_name(body.get("initial_device_display_name"))
    refreshable = body.get("refresh_token", False)
    if not isinstance(refreshable, bool):
        raise MatrixError(400, Errcode.BAD_JSON, "refresh_token must be a boolean")
    if user_id is not None:
        check_rate_limit("login", f"user:{user_id}")
    account = account_store.get_account(user_id) if user_id is not None else None
    if not password_matches(password, account.password_hash if account else None):
        if account is None:
            raise _fail(user_id or _attempted(body), "unknown_user")
        raise _fail(user_id, "deactivated" if account.deactivated else "wrong_password")
    assert account is not None and user_id is not None
    if account.deactivated:  # deactivation clears the password; kept for defence in depth
        raise _fail(user_id, "deactivated")
    with transaction.atomic():
        known_device = device_id is not None and account_store.device_pk(user_id, device_id)
        session = start_session(user_id, device_id=device_id, display_name=display_name,
                                refreshable=refreshable)
        record(AuditAction.LOGIN_SUCCEEDED, actor=user_id, target=user_id,
               details={"device_id": session.device_id, "method": PASSWORD_LOGIN,
                        "existing_device": bool(known_device)})
    return session.login_response(server_name())
