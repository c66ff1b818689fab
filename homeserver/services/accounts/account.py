"""Password change and account deactivation (both behind user-interactive auth).

Spec: client-server API "Password management" (POST /account/password) and "Account
deactivation" (POST /account/deactivate).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from audit.actions import AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts import uia
from homeserver.services.accounts.passwords import check_new_password, hash_password
from homeserver.services.accounts.sessions import remove_devices
from homeserver.services.events.send import do_send_event
from homeserver.storage import account_data as data_store
from homeserver.storage import accounts as account_store
from homeserver.storage import state as state_store

logger = logging.getLogger(__name__)

# Memberships a deactivated account is taken out of.
LEAVE_MEMBERSHIPS = ("join", "invite", "knock")
# Dotted paths of `fn(user_id, erase)`, called inside the deactivation transaction once the
# account is marked deactivated: what other features keep per account goes with it. Paths (as
# in sync/providers.py) so that this module imports none of them.
DEACTIVATION_HOOKS: list[str] = [
    "homeserver.services.media.lifecycle.on_account_deactivated",
    "homeserver.services.ephemeral.lifecycle.on_account_deactivated",
]


def do_change_password(user_id: str, device_id: str | None, body: dict[str, Any],
                       *, operation: str) -> None:
    """The new password is checked first (no point confirming the old one for a password that
    will be refused). With `logout_devices` (default true) every other device is signed out."""
    new_password = check_new_password(body.get("new_password"))
    logout_devices = body.get("logout_devices", True)
    if not isinstance(logout_devices, bool):
        raise MatrixError(400, Errcode.BAD_JSON, "logout_devices must be a boolean")
    result = uia.authenticate(body.get("auth"), operation=operation,
                              flows=uia.password_flows(user_id), user_id=user_id)
    new_hash = hash_password(new_password)
    with transaction.atomic():
        uia.consume(result)
        if account_store.lock_account(user_id) is None:
            raise MatrixError(404, Errcode.NOT_FOUND, "No such account")
        account_store.set_password_hash(user_id, new_hash)
        removed: list[str] = []
        if logout_devices:
            removed = remove_devices(user_id, None, keep=device_id or "",
                                     reason="password_changed")
        record(AuditAction.PASSWORD_CHANGED, actor=user_id, target=user_id,
               details={"logout_devices": logout_devices, "devices_removed": len(removed)})


def do_deactivate(user_id: str, body: dict[str, Any], *, operation: str) -> dict[str, Any]:
    """Deactivate (and with `erase`, mark for erasure) the requester's account: password and
    every device and token go, the profile is cleared; then the account leaves its rooms.

    Spec: "POST /_matrix/client/v3/account/deactivate". Erasure (GDPR): events the user sent
    are no longer served to users who join later (the event layer reads `erased`); the
    account's account data and filters are deleted now."""
    erase = body.get("erase", False)
    if not isinstance(erase, bool):
        raise MatrixError(400, Errcode.BAD_JSON, "erase must be a boolean")
    result = uia.authenticate(body.get("auth"), operation=operation,
                              flows=uia.password_flows(user_id), user_id=user_id)
    with transaction.atomic():
        uia.consume(result)
        account = account_store.lock_account(user_id)
        if account is None or account.deactivated:
            raise MatrixError(403, Errcode.USER_DEACTIVATED, "Account already deactivated")
        account_store.mark_deactivated(user_id, erased=erase)
        removed = remove_devices(user_id, None, reason="deactivated")
        data_store.clear_profile(user_id)
        if erase:
            data_store.delete_user_data(user_id)
        record(AuditAction.USER_DEACTIVATED, actor=user_id, target=user_id,
               details={"erase": erase, "devices_removed": len(removed)})
        if erase:
            record(AuditAction.USER_ERASED, actor=user_id, target=user_id, details={})
        run_deactivation_hooks(user_id, erase)
    leave_all_rooms(user_id)
    return {"id_server_unbind_result": "no-support"}


def run_deactivation_hooks(user_id: str, erase: bool) -> None:
    from importlib import import_module

    for path in DEACTIVATION_HOOKS:
        module, _, name = path.rpartition(".")
        getattr(import_module(module), name)(user_id, erase)


def leave_all_rooms(user_id: str) -> None:
    """Best effort, one transaction per room (a room that refuses the leave must not keep the
    account in the others)."""
    for room_id in sorted(state_store.rooms_for_user(user_id, LEAVE_MEMBERSHIPS)):
        try:
            do_send_event(room_id=room_id, sender=user_id, event_type="m.room.member",
                          content={"membership": "leave"}, state_key=user_id)
        except MatrixError as e:
            logger.warning("deactivated %s could not leave %s: %s", user_id, room_id, e.error)
