"""Finding content to serve: local media by (serverName, mediaId), waiting for pending uploads.

Spec: client-server API "GET /_matrix/client/v1/media/download/{serverName}/{mediaId}" (and the
deprecated /_matrix/media/v3 one): `timeout_ms` (default 20 s; "the content repository SHOULD
impose a maximum") is how long to wait for an upload that was created but not yet made; when it
runs out, 504 M_NOT_YET_UPLOADED. Quarantined media is 404 M_NOT_FOUND to everyone, exactly like
unknown media.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import BinaryIO

from asgiref.sync import sync_to_async
from django.conf import settings

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.media.mxc import check_media_ref, is_local
from homeserver.services.media.remote import remote_media
from homeserver.services.media.sniff import content_disposition, serving_type
from homeserver.services.media.upload import now_ms
from homeserver.storage import media as store
from homeserver.storage.media_files import media_backend

DEFAULT_TIMEOUT_MS = 20_000


@dataclass
class Servable:
    """An open stored file and the headers to send it with."""

    file: BinaryIO
    size: int
    content_type: str
    disposition: str


def not_found() -> MatrixError:
    return MatrixError(404, Errcode.NOT_FOUND, "Media not found")


def local_media(server_name: str, media_id: str) -> store.MediaRecord:
    """The media row, pending or not; 400 for a malformed reference, 404 when there is none
    to serve. Other servers' media is the federation seam (services/media/remote.py)."""
    check_media_ref(server_name, media_id)
    if not is_local(server_name):
        return remote_media(server_name, media_id)
    record = store.get_media(media_id)
    if record is None or record.quarantined_by or record.expired(now_ms()):
        raise not_found()
    return record


async def wait_for_content(server_name: str, media_id: str,
                           timeout_ms: int = DEFAULT_TIMEOUT_MS) -> store.MediaRecord:
    """The media once its content is there; 504 M_NOT_YET_UPLOADED after `timeout_ms`
    (capped by [media] max_download_wait_ms)."""
    if timeout_ms < 0:
        raise MatrixError(400, Errcode.INVALID_PARAM, "timeout_ms must not be negative")
    wait_s = min(timeout_ms, settings.PALISADE.media.max_download_wait_ms) / 1000
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        record = await sync_to_async(local_media)(server_name, media_id)
        if not record.pending:
            return record
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise MatrixError(504, Errcode.NOT_YET_UPLOADED, "Content has not yet been uploaded")
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.5)


def open_stored(key: str) -> BinaryIO:
    try:
        return media_backend().open(key)
    except FileNotFoundError:  # deleted between reading the row and opening the file
        raise not_found() from None


def servable_download(record: store.MediaRecord, filename: str | None) -> Servable:
    """The original content. `filename` (from the download path) replaces the upload's name."""
    content_type, inline = serving_type(record.content_type, record.sniffed_type)
    name = record.upload_name if filename is None else filename
    return Servable(open_stored(record.file_key), record.size, content_type,
                    content_disposition(inline, name))
