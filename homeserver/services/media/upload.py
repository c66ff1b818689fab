"""Storing uploaded content.

Spec: client-server API "POST /_matrix/media/v3/upload", and the v1.7 asynchronous upload:
"POST /_matrix/media/v1/create" then "PUT /_matrix/media/v3/upload/{serverName}/{mediaId}".

The view stages the request body first (storage/media_staging.py: size limit, SHA-256, fsync);
`do_upload*` then asks the `media_upload` policy hook, and in one transaction writes the row and
moves the staged file under its key. If anything fails after the move — including the commit —
the file is removed again, so there is never a row without its file nor a file without its row
(a crash between the move and the commit can leave an unreferenced file, never a dangling row).
Uploads are not audited (too frequent to be useful in the chain); admin quarantines and
deletions and erasure-driven removals are.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.db import transaction

from compliance.hooks import Hook, records_policy_denials
from compliance.hooks import run as run_policy
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.media.mxc import (
    check_media_ref,
    file_key,
    is_local,
    mxc_uri,
    new_media_id,
)
from homeserver.services.media.sniff import OCTET_STREAM, sniff
from homeserver.services.ratelimit import check_rate_limit
from homeserver.storage import media as store
from homeserver.storage.media_files import media_backend
from homeserver.storage.media_staging import StagedFile, too_large


def now_ms() -> int:
    return int(time.time() * 1000)


def check_upload_allowed(user_id: str, content_length: str | None) -> int | None:
    """Before the body is read: rate limit, then a declared length over the limit -> 413.
    Returns the declared length (None when the request had no Content-Length)."""
    check_rate_limit("media_upload", f"user:{user_id}")
    if content_length in (None, ""):
        return None
    try:
        declared = int(content_length)
    except ValueError:
        raise MatrixError(400, Errcode.INVALID_PARAM, "Invalid Content-Length") from None
    if declared < 0:
        raise MatrixError(400, Errcode.INVALID_PARAM, "Invalid Content-Length")
    limit = settings.PALISADE.media.max_upload_size
    if declared > limit:
        raise too_large(limit)
    return declared


def _check_policy(user_id: str, content_type: str, staged: StagedFile) -> str:
    sniffed = sniff(staged.head)
    run_policy(Hook.MEDIA_UPLOAD, {
        "actor": user_id, "target": "", "content_type": content_type or OCTET_STREAM,
        "size": staged.size, "sniffed_type": sniffed,
    })
    return sniffed


def _store(key: str, staged: StagedFile, write_rows: Callable[[], None]) -> None:
    if transaction.get_connection().in_atomic_block:
        # A file cannot join an outer transaction: its rollback would leave the file behind.
        raise RuntimeError("media is stored in a transaction of its own; "
                           "call do_upload* outside transaction.atomic()")
    backend = media_backend()
    placed = False
    try:
        with transaction.atomic():
            write_rows()
            backend.put(key, staged)
            placed = True
    except BaseException:
        if placed:
            backend.delete(key)
        raise


@records_policy_denials
def do_upload(user_id: str, staged: StagedFile, content_type: str, filename: str) -> str:
    """Store new content; returns its mxc:// URI."""
    sniffed = _check_policy(user_id, content_type, staged)
    media_id = new_media_id()
    now = now_ms()
    record = store.MediaRecord(
        media_id=media_id, user_id=user_id, created_ts=now, upload_ts=now,
        unused_expires_ts=None, content_type=content_type, sniffed_type=sniffed,
        upload_name=filename, size=staged.size, sha256=staged.sha256,
        file_key=file_key(media_id), quarantined_by="", quarantined_ts=None,
    )
    _store(record.file_key, staged, lambda: store.insert_media(record))
    return mxc_uri(media_id)


def do_create_pending(user_id: str) -> dict:
    """Reserve an mxc:// URI whose content comes later. Spec: POST /_matrix/media/v1/create
    (429 M_LIMIT_EXCEEDED for too many pending uploads of one user)."""
    check_rate_limit("media_upload", f"user:{user_id}")
    cfg = settings.PALISADE.media
    now = now_ms()
    expires = now + cfg.pending_upload_expiry_seconds * 1000
    media_id = new_media_id()
    with transaction.atomic():
        store.delete_expired_pending(now, user_id)
        if store.count_pending(user_id, now) >= cfg.max_pending_uploads:
            raise MatrixError(429, Errcode.LIMIT_EXCEEDED,
                              f"At most {cfg.max_pending_uploads} pending uploads per user")
        store.insert_media(store.MediaRecord(
            media_id=media_id, user_id=user_id, created_ts=now, upload_ts=None,
            unused_expires_ts=expires, content_type="", sniffed_type="", upload_name="",
            size=0, sha256="", file_key="", quarantined_by="", quarantined_ts=None,
        ))
    return {"content_uri": mxc_uri(media_id), "unused_expires_at": expires}


def _check_pending(record: store.MediaRecord | None, user_id: str, now: int) -> None:
    # Spec: PUT /upload/{serverName}/{mediaId}: 404 for an ID not from /create or expired,
    # 403 for another user's, 409 M_CANNOT_OVERWRITE_MEDIA once content is there.
    if record is None or record.quarantined_by:
        raise MatrixError(404, Errcode.NOT_FOUND, "Unknown media ID")
    if record.user_id != user_id:
        raise MatrixError(403, Errcode.FORBIDDEN, "Only the creator of this media ID may upload")
    if not record.pending:
        raise MatrixError(409, Errcode.CANNOT_OVERWRITE_MEDIA, "Media already uploaded")
    if record.expired(now):
        raise MatrixError(404, Errcode.NOT_FOUND, "This media ID has expired")


def check_pending_target(user_id: str, server_name: str, media_id: str) -> None:
    """The checks of PUT /upload/.. that need no body, so a refused PUT is refused before
    its body is staged. `do_upload_pending` repeats them under the row lock."""
    check_media_ref(server_name, media_id)
    if not is_local(server_name):
        raise MatrixError(404, Errcode.NOT_FOUND, "Unknown media ID")
    _check_pending(store.get_media(media_id), user_id, now_ms())


@records_policy_denials
def do_upload_pending(user_id: str, server_name: str, media_id: str, staged: StagedFile,
                      content_type: str, filename: str) -> None:
    check_pending_target(user_id, server_name, media_id)
    sniffed = _check_policy(user_id, content_type, staged)
    key = file_key(media_id)

    def write_rows() -> None:
        now = now_ms()
        _check_pending(store.lock_media(media_id), user_id, now)
        store.complete_upload(
            media_id, upload_ts=now, content_type=content_type, sniffed_type=sniffed,
            upload_name=filename, size=staged.size, sha256=staged.sha256, file_key=key,
        )

    _store(key, staged, write_rows)
