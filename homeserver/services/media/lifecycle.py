"""Media that goes because something else happened: an account erased (GDPR) or deactivated,
and async uploads whose time ran out.

`on_account_deactivated` is listed in services/accounts/account.py DEACTIVATION_HOOKS and runs
inside the deactivation transaction: the media rows go (audited, actor "system", target the
account) with the account's erasure, the files right after the commit. Erasure always removes
the account's media; plain deactivation does with [media] remove_on_deactivation.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from audit.actions import ActorType
from homeserver.services.media.admin import delete_user_media
from homeserver.services.media.upload import now_ms
from homeserver.storage import media as store


def on_account_deactivated(user_id: str, erase: bool) -> None:
    if not (erase or settings.PALISADE.media.remove_on_deactivation):
        return
    delete_user_media(user_id, actor="system", actor_type=ActorType.SYSTEM,
                      reason="account_erased" if erase else "account_deactivated")


def purge_expired_pending(now: int | None = None) -> int:
    """Forget async uploads never made before their `unused_expires_at` (spec: POST
    /_matrix/media/v1/create "The server may optionally enforce a maximum age for unused
    IDs"). They have no file, so this is rows only; for a periodic task. Returns the count."""
    with transaction.atomic():
        return store.delete_expired_pending(now_ms() if now is None else now)
