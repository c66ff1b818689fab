"""Session logins, failed logins and logouts (the admin UI and admin SSO use Django sessions).

Matrix API logins are recorded by their services; these receivers cover django.contrib.auth.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record


def on_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    staff = bool(getattr(user, "is_staff", False))
    with transaction.atomic():
        record(AuditAction.ADMIN_LOGIN if staff else AuditAction.LOGIN_SUCCEEDED,
               actor=user.get_username(), actor_type=ActorType.ADMIN if staff else ActorType.USER,
               details={"via": "session"})


def on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None,
                    **kwargs: Any) -> None:
    # `credentials` has the password already masked by Django; only the username is kept.
    username = str(credentials.get("username", ""))[:255]
    with transaction.atomic():
        record(AuditAction.LOGIN_FAILED, actor=username, actor_type=ActorType.USER,
               details={"via": "session"})


def on_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    staff = bool(getattr(user, "is_staff", False))
    with transaction.atomic():
        record(AuditAction.LOGOUT, actor=user.get_username(),
               actor_type=ActorType.ADMIN if staff else ActorType.USER,
               details={"via": "session"})


def connect() -> None:
    user_logged_in.connect(on_logged_in, dispatch_uid="audit.login")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit.login_failed")
    user_logged_out.connect(on_logged_out, dispatch_uid="audit.logout")
