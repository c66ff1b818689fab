"""Removing and quarantining media, by admins and as a consequence of other actions (an erased
account, a purged room), and what admins see of media usage.

Every quarantine, release and deletion is audited in the transaction that makes it. Deleted
media loses its rows in that transaction and its files (content and thumbnails) right after the
commit; a quarantined one keeps both (evidence) but is 404 M_NOT_FOUND to everyone.
"""

from __future__ import annotations

import logging

from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.media import remote_admin
from homeserver.services.media.mxc import check_media_ref, is_local, mxc_uri, parse_mxc
from homeserver.services.media.upload import now_ms
from homeserver.storage import media as store
from homeserver.storage.media_files import media_backend

logger = logging.getLogger(__name__)

MAX_LISTED_IDS = 500  # media IDs named in one audit record (the count is always exact)


def _local_id(server_name: str, media_id: str) -> str:
    check_media_ref(server_name, media_id)
    if not is_local(server_name):
        raise MatrixError(404, Errcode.NOT_FOUND, "Only local media is kept here")
    return media_id


def _set_quarantine(admin: str, server_name: str, media_id: str, on: bool) -> None:
    check_media_ref(server_name, media_id)
    if not is_local(server_name):  # a cached copy of another server's media
        remote_admin.set_quarantine(admin, server_name, media_id, on)
        return
    media_id = _local_id(server_name, media_id)
    with transaction.atomic():
        media = store.lock_media(media_id)
        if media is None:
            raise MatrixError(404, Errcode.NOT_FOUND, "Media not found")
        if bool(media.quarantined_by) == on:
            return  # already so: nothing changes, nothing to audit
        store.set_quarantine(media_id, admin if on else "", now_ms() if on else None)
        record(AuditAction.MEDIA_QUARANTINED if on else AuditAction.MEDIA_UNQUARANTINED,
               actor=admin, actor_type=ActorType.ADMIN, target=mxc_uri(media_id),
               details={"uploader": media.user_id, "size": media.size,
                        "sha256": media.sha256})


def do_quarantine(admin: str, server_name: str, media_id: str) -> None:
    _set_quarantine(admin, server_name, media_id, True)


def do_unquarantine(admin: str, server_name: str, media_id: str) -> None:
    _set_quarantine(admin, server_name, media_id, False)


def _delete_files(keys: list[str]) -> None:
    backend = media_backend()
    for key in keys:
        try:
            backend.delete(key)
        except OSError:
            logger.exception("could not delete media file %s (its rows are gone)", key)


def delete_local_media(media_ids: list[str], *, actor: str, actor_type: ActorType,
                       target: str, reason: str) -> list[str]:
    """Delete these local media (those that exist); returns the IDs deleted. Joins the
    caller's transaction when there is one; files go once it commits."""
    with transaction.atomic():
        ids, keys, total = store.lock_for_delete(sorted(set(media_ids)))
        if not ids:
            return []
        store.delete_media(ids)
        record(AuditAction.MEDIA_DELETED, actor=actor, actor_type=actor_type, target=target,
               details={"reason": reason, "count": len(ids), "bytes": total,
                        "media_ids": ids[:MAX_LISTED_IDS],
                        "media_ids_truncated": len(ids) > MAX_LISTED_IDS})
        transaction.on_commit(lambda: _delete_files(keys), robust=True)
    return ids


def do_delete_media(admin: str, server_name: str, media_id: str) -> list[str]:
    check_media_ref(server_name, media_id)
    if not is_local(server_name):  # drop the cached copy of another server's media
        remote_admin.delete_cached(admin, server_name, media_id)
        return [media_id]
    media_id = _local_id(server_name, media_id)
    deleted = delete_local_media([media_id], actor=admin, actor_type=ActorType.ADMIN,
                                 target=mxc_uri(media_id), reason="admin")
    if not deleted:
        raise MatrixError(404, Errcode.NOT_FOUND, "Media not found")
    return deleted


def delete_user_media(user_id: str, *, actor: str, actor_type: ActorType,
                      reason: str) -> list[str]:
    """Everything `user_id` uploaded (and their pending uploads)."""
    return delete_local_media(store.media_ids_of_user(user_id), actor=actor,
                              actor_type=actor_type, target=user_id, reason=reason)


def delete_media_by_uris(uris: list[str], *, target: str, reason: str = "room_purged",
                         actor: str = "system",
                         actor_type: ActorType = ActorType.SYSTEM) -> list[str]:
    """For a purged room (target = its room ID): delete the local media among `uris`;
    remote and malformed URIs are skipped."""
    ids = [ref[1] for ref in map(parse_mxc, uris) if ref is not None and is_local(ref[0])]
    return delete_local_media(ids, actor=actor, actor_type=actor_type, target=target,
                              reason=reason)


def user_media(user_id: str, offset: int, limit: int) -> dict:
    """Synapse-style listing of one user's media, newest first, with usage totals."""
    rows, total = store.list_user_media(user_id, offset, limit)
    usage = store.user_usage(user_id)
    body = {
        "media": [{
            "media_id": m.media_id, "media_type": m.content_type, "media_length": m.size,
            "upload_name": m.upload_name or None, "created_ts": m.created_ts,
            "quarantined_by": m.quarantined_by or None, "sha256": m.sha256 or None,
            "pending": m.pending,
        } for m in rows],
        "total": total,
        "media_count": usage.media_count,
        "media_length": usage.media_length,
    }
    if offset + len(rows) < total:
        body["next_token"] = offset + len(rows)
    return body


def usage_by_user(offset: int, limit: int, search: str) -> dict:
    rows, total = store.usage_by_user(offset, limit, search)
    body = {
        "users": [{"user_id": u.user_id, "media_count": u.media_count,
                   "media_length": u.media_length} for u in rows],
        "total": total,
    }
    if offset + len(rows) < total:
        body["next_token"] = offset + len(rows)
    return body
