"""Admins and cached remote media: quarantine (404 to every local user, the cached copy kept as
evidence) and deletion from the cache, audited in the transaction that makes them, like local
media (services/media/admin.py, which hands other servers' media here). Only what is cached can
be quarantined; deleting a cached copy means the next download fetches it again.
"""

from __future__ import annotations

from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.media.upload import now_ms
from homeserver.storage import remote_media as store
from homeserver.storage.media_files import media_backend


def _not_cached() -> MatrixError:
    return MatrixError(404, Errcode.NOT_FOUND, "Remote media not found in the cache")


def set_quarantine(admin: str, server_name: str, media_id: str, on: bool) -> None:
    with transaction.atomic():
        media = store.lock_cached(server_name, media_id)
        if media is None:
            raise _not_cached()
        if bool(media.quarantined_by) == on:
            return  # already so: nothing changes, nothing to audit
        store.set_quarantine(server_name, media_id, admin if on else "",
                             now_ms() if on else None)
        record(AuditAction.MEDIA_QUARANTINED if on else AuditAction.MEDIA_UNQUARANTINED,
               actor=admin, actor_type=ActorType.ADMIN,
               target=f"mxc://{server_name}/{media_id}",
               details={"origin": server_name, "cached": True, "size": media.size,
                        "sha256": media.sha256})


def _delete_files(keys: list[str]) -> None:
    backend = media_backend()
    for key in keys:
        backend.delete(key)


def delete_cached(admin: str, server_name: str, media_id: str) -> None:
    with transaction.atomic():
        media = store.lock_cached(server_name, media_id)
        if media is None:
            raise _not_cached()
        keys = store.delete_cached(server_name, media_id)
        record(AuditAction.MEDIA_DELETED, actor=admin, actor_type=ActorType.ADMIN,
               target=f"mxc://{server_name}/{media_id}",
               details={"reason": "admin", "origin": server_name, "cached": True, "count": 1,
                        "bytes": media.size, "media_ids": [media_id]})
        transaction.on_commit(lambda: _delete_files(keys), robust=True)
