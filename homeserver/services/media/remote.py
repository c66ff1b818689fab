"""Media of other servers, for local clients: the federation list, the cache, serving.

Spec: client-server API content repository ("Content is downloaded from the recipient's local
homeserver, which must first transfer the content from the origin homeserver using the same
API (unless the origin and destination homeservers are the same)") and the server-server API
"Content Repository" (the transfer itself: services/media/remote_fetch.py).

For GET /_matrix/client/v1/media/{download,thumbnail}/{serverName}/{mediaId} of another server:
1. `serverName` is checked against the federation list first, cached or not (REQUIREMENTS.md
   A_25534 / A_26328): an unlisted server's media is 403 M_FORBIDDEN, nothing is fetched, and
   the refusal is audited once per request (POLICY_DENIED, hook federation_request, direction
   outbound, actor = the requesting user).
2. A cached copy (homeserver/models/media.py RemoteMedia) is served as it is: the second
   download never goes to the origin. Cached media is "new" media in the sense of the v1.11
   freeze: it is only ever served through the authenticated endpoints.
3. Otherwise the content is fetched, at most [media] max_upload_size bytes of it (more is
   502 M_TOO_LARGE and nothing is kept), staged, and stored: file first, then its row; a row
   exists exactly when its file does. Concurrent requests in one process share one fetch;
   processes racing to fetch the same media both fetch, the row that lands first wins and the
   other removes its own file.
Served like local media: the Content-Type from the origin, believed for images only when the
bytes agree (services/media/sniff.py), its file name in Content-Disposition.

The deprecated unauthenticated /_matrix/media/v3 endpoints never fetch: `remote_media` below
keeps answering them 404 M_NOT_FOUND, so enabling them publishes no other server's media.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import TYPE_CHECKING, NoReturn

from asgiref.sync import sync_to_async
from django.conf import settings

from compliance.federation_access import decide
from compliance.hooks import Deny, Hook, PolicyDenied, records_policy_denials
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.media import remote_fetch
from homeserver.services.media.mxc import check_media_ref
from homeserver.services.media.sniff import content_disposition, serving_type, sniff
from homeserver.services.media.upload import now_ms
from homeserver.storage import remote_media as store
from homeserver.storage.media_files import media_backend
from homeserver.storage.media_staging import discard

if TYPE_CHECKING:
    from homeserver.services.media.download import Servable

DEFAULT_TIMEOUT_MS = 20_000


def remote_media(server_name: str, media_id: str) -> NoReturn:
    """Other servers' media on the paths that do not fetch (the deprecated unauthenticated
    endpoints): 404 M_NOT_FOUND."""
    raise MatrixError(404, Errcode.NOT_FOUND, "Media not found (remote media is not fetched)")


@records_policy_denials
def check_listed(user_id: str, server_name: str, media_id: str) -> None:
    """403 M_FORBIDDEN (audited) when `server_name` is off the federation list."""
    rule = decide(server_name)
    if rule is not None:
        raise PolicyDenied(
            Hook.FEDERATION_REQUEST,
            Deny(rule=rule, reason=f"Federation with {server_name} is not allowed"),
            {"actor": user_id, "target": f"mxc://{server_name}/{media_id}",
             "direction": "outbound", "destination": server_name, "path": "media"},
        )


def cache_key(server_name: str, media_id: str) -> str:
    """Where a fetched copy is kept; the random tag lets two racing fetches never share a
    file (server names may hold ':' and '[', so the name is a digest)."""
    name = hashlib.sha256(f"{server_name}/{media_id}".encode()).hexdigest()
    return f"remote/{name[:2]}/{name[2:4]}/{name}-{secrets.token_hex(4)}"


def _keep(server_name: str, media_id: str,
          fetched: remote_fetch.Fetched) -> store.RemoteMediaRecord:
    staged = fetched.staged
    record = store.RemoteMediaRecord(
        server_name=server_name, media_id=media_id, fetched_ts=now_ms(),
        content_type=fetched.content_type, sniffed_type=sniff(staged.head),
        upload_name=fetched.filename, size=staged.size, sha256=staged.sha256,
        file_key=cache_key(server_name, media_id),
    )
    backend = media_backend()
    backend.put(record.file_key, staged)
    try:
        inserted = store.insert_cached(record)
    except BaseException:
        backend.delete(record.file_key)
        raise
    if inserted:
        return record
    backend.delete(record.file_key)  # lost the race: serve the winner's copy
    return store.get_cached(server_name, media_id) or record


# Fetches under way in this process: concurrent requests for the same media share one fetch
# (a room full of clients loading the same remote avatar asks the origin once).
_inflight: dict[tuple[str, str], asyncio.Future[store.RemoteMediaRecord]] = {}


async def _fetch_and_keep(server_name: str, media_id: str,
                          timeout_ms: int) -> store.RemoteMediaRecord:
    cfg = settings.PALISADE.media
    fetched = await remote_fetch.fetch(server_name, media_id, max_size=cfg.max_upload_size,
                                       timeout_ms=min(timeout_ms, cfg.max_download_wait_ms))
    try:
        return await sync_to_async(_keep)(server_name, media_id, fetched)
    finally:
        discard(fetched.staged)


async def cached_remote(user_id: str, server_name: str, media_id: str,
                        timeout_ms: int = DEFAULT_TIMEOUT_MS) -> store.RemoteMediaRecord:
    """The cached copy of another server's media, fetched first when there is none."""
    check_media_ref(server_name, media_id)
    if timeout_ms < 0:
        raise MatrixError(400, Errcode.INVALID_PARAM, "timeout_ms must not be negative")
    await sync_to_async(check_listed)(user_id, server_name, media_id)
    record = await sync_to_async(store.get_cached)(server_name, media_id)
    if record is None:
        key = (server_name, media_id)
        task = _inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(_fetch_and_keep(server_name, media_id, timeout_ms))
            _inflight[key] = task
            task.add_done_callback(lambda _: _inflight.pop(key, None))
        # Shielded: a client that goes away does not cancel the fetch others wait for.
        record = await asyncio.shield(task)
    if record.quarantined_by:
        raise MatrixError(404, Errcode.NOT_FOUND, "Media not found")
    return record


def servable(record: store.RemoteMediaRecord, filename: str | None) -> Servable:
    """Spec: download "Content-Disposition": for remote media the origin's file name is
    used; a `{fileName}` in the path replaces it, as for local media."""
    content_type, inline = serving_type(record.content_type, record.sniffed_type)
    name = record.upload_name if filename is None else filename
    # Imported here: download.py imports this module (remote_media above).
    from homeserver.services.media.download import Servable, open_stored

    return Servable(open_stored(record.file_key), record.size, content_type,
                    content_disposition(inline, name))


async def remote_download(user_id: str, server_name: str, media_id: str,
                          filename: str | None, timeout_ms: int) -> Servable:
    record = await cached_remote(user_id, server_name, media_id, timeout_ms)
    return await sync_to_async(servable)(record, filename)
