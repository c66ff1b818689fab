"""User-interactive authentication (UIA), reusable by any endpoint that needs it.

Spec: client-server API "User-Interactive Authentication API": a request without `auth` gets a
401 with `flows`, `params` and a `session`; the client completes stages by resending the same
request with `auth: {type, session, ...}`; a failed stage is a 401 with the same body plus
`errcode`/`error`; once every stage of one flow is completed the request is performed.

    result = authenticate(body.get("auth"), operation="POST /account/password",
                          flows=password_flows(user_id), user_id=user_id)
    with transaction.atomic():
        consume(result)       # single use: a completed session authorises one operation
        ...                   # the operation

Sessions are rows (shared by all workers), bound to the operation (method and path) and the
user they were started for, and expire after SESSION_LIFETIME_MS.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from audit.actions import AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts.passwords import password_matches
from homeserver.services.accounts.sessions import now_ms
from homeserver.services.accounts.user_ids import user_from_identifier
from homeserver.services.ratelimit import check_rate_limit
from homeserver.storage import accounts as account_store
from homeserver.storage import registration as reg_store

PASSWORD = "m.login.password"
DUMMY = "m.login.dummy"
REGISTRATION_TOKEN = "m.login.registration_token"
SESSION_LIFETIME_MS = 30 * 60 * 1000
MAX_REGISTRATION_TOKEN_LENGTH = 64


class UIARequired(MatrixError):
    """The 401 of the UIA protocol. `body` is the exact response; views render it as is
    (without errcode unless a stage failed), the generic error handler renders it too."""

    def __init__(self, flows: list[list[str]], params: dict[str, Any], session: str,
                 completed: list[str], errcode: str | None = None, error: str | None = None):
        body: dict[str, Any] = {
            "flows": [{"stages": list(f)} for f in flows],
            "params": params,
            "session": session,
        }
        if completed:
            body["completed"] = list(completed)
        super().__init__(401, errcode or Errcode.UNAUTHORIZED,
                         error or "Additional authentication is required", **body)
        if errcode:
            body = {"errcode": errcode, "error": error, **body}
        self.body = body


@dataclass
class UIAResult:
    session_id: str
    completed: list[str] = field(default_factory=list)
    registration_token: str = ""


def password_flows(user_id: str) -> list[list[str]]:
    """Flows for re-authenticating a logged-in user (device deletion, password change,
    deactivation): their password. Accounts without one cannot use these endpoints yet."""
    acct = account_store.get_account(user_id)
    if acct is None or not acct.password_hash or acct.password_hash.startswith("!"):
        raise MatrixError(403, Errcode.FORBIDDEN,
                          "This account has no password to confirm this request with")
    return [[PASSWORD]]


def _new_session(operation: str, user_id: str) -> str:
    now = now_ms()
    session_id = secrets.token_urlsafe(24)
    with transaction.atomic():
        reg_store.purge_uia_sessions(now - SESSION_LIFETIME_MS)
        reg_store.create_uia_session(
            session_id=session_id, operation=operation, user_id=user_id, now=now
        )
    return session_id


def _check_password_stage(auth: dict[str, Any], user_id: str) -> str | None:
    """None on success, else the error to show. Wrong passwords are audited and rate-limited
    like logins (this is a password check an attacker could otherwise use freely)."""
    named = user_from_identifier(auth)
    if named != user_id:
        return "The identifier does not match the user making this request"
    check_rate_limit("login", f"user:{user_id}")
    acct = account_store.get_account(user_id)
    if password_matches(auth.get("password"), acct.password_hash if acct else None):
        return None
    with transaction.atomic():
        record(AuditAction.LOGIN_FAILED, actor=user_id, target=user_id,
               details={"reason": "wrong_password", "via": "user_interactive_auth"})
    return "Invalid password"


def _take_registration_token(auth: dict[str, Any], session_id: str) -> str | None:
    token = auth.get("token")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_REGISTRATION_TOKEN_LENGTH:
        return "Invalid registration token"
    with transaction.atomic():
        sess = reg_store.lock_uia_session(session_id)
        if sess is None:
            return "Authentication session expired"
        if sess.registration_token:
            return None
        if not reg_store.registration_token_usable(token, now_ms(), lock=True):
            return "Invalid registration token"
        reg_store.add_pending_use(token)
        reg_store.update_uia_session(
            session_id, completed=sess.completed, registration_token=token
        )
    return None


def authenticate(
    auth: Any, *, operation: str, flows: list[list[str]], user_id: str = "",
    params: dict[str, Any] | None = None,
) -> UIAResult:
    """Advance the UIA session in `auth`; returns once a whole flow is completed, otherwise
    raises UIARequired. `operation` binds the session to one request, e.g. "POST /register"."""
    params = params or {}
    if auth is None:
        raise UIARequired(flows, params, _new_session(operation, user_id), [])
    if not isinstance(auth, dict):
        raise MatrixError(400, Errcode.BAD_JSON, "auth must be an object")
    session_id = auth.get("session")
    if session_id is None:
        session_id = _new_session(operation, user_id)
    elif not isinstance(session_id, str):
        raise MatrixError(400, Errcode.BAD_JSON, "auth.session must be a string")
    sess = reg_store.get_uia_session(session_id)
    if sess is None or sess.created_ts < now_ms() - SESSION_LIFETIME_MS:
        raise MatrixError(400, Errcode.UNKNOWN, "Unknown or expired authentication session")
    if sess.operation != operation or sess.user_id != user_id:
        raise MatrixError(403, Errcode.FORBIDDEN,
                          "This authentication session was started for a different request")
    offered = {stage for flow in flows for stage in flow}
    stage = auth.get("type")
    if stage is not None and not isinstance(stage, str):
        raise MatrixError(400, Errcode.BAD_JSON, "auth.type must be a string")
    error = None
    if stage is not None and stage not in sess.completed:
        if stage not in offered:
            raise MatrixError(400, Errcode.INVALID_PARAM,
                              f"Authentication type {stage!r} is not offered for this request")
        if stage == PASSWORD:
            error = _check_password_stage(auth, user_id)
        elif stage == REGISTRATION_TOKEN:
            error = _take_registration_token(auth, session_id)
        if error is None:
            with transaction.atomic():
                current = reg_store.lock_uia_session(session_id)
                if current is None:
                    raise MatrixError(400, Errcode.UNKNOWN, "Authentication session expired")
                completed = current.completed
                if stage not in completed:
                    completed = [*completed, stage]
                reg_store.update_uia_session(session_id, completed=completed,
                                             registration_token=current.registration_token)
            sess = dataclasses.replace(current, completed=completed)
    if error is not None:
        raise UIARequired(flows, params, session_id, sess.completed, Errcode.FORBIDDEN, error)
    if any(set(flow) <= set(sess.completed) for flow in flows):
        return UIAResult(session_id, list(sess.completed), sess.registration_token)
    raise UIARequired(flows, params, session_id, sess.completed)


def consume(result: UIAResult) -> None:
    """Spend a completed session inside the operation's transaction: it authorises exactly one
    operation (a concurrent second use finds it gone and rolls back)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("consume() must run inside the operation's transaction")
    if not reg_store.delete_uia_session(result.session_id):
        raise MatrixError(400, Errcode.UNKNOWN, "Authentication session already used")
    if result.registration_token:
        reg_store.complete_use(result.registration_token)
