"""Fetching another server's media over federation: the transport half of the remote media
cache (services/media/remote.py decides whether to fetch and keeps what was fetched).

Spec: server-server API "Content Repository": servers MUST download from the server of the
mxc:// URI, first with GET /_matrix/federation/v1/media/download/{mediaId} (signed, like every
federation request), and only on `404 M_UNRECOGNIZED` fall back to the deprecated
GET /_matrix/media/v3/download/{serverName}/{mediaId} with `allow_remote=false`.
The new endpoint answers multipart/mixed with exactly two parts: a JSON metadata object, then
either the bytes (with their Content-Type and Content-Disposition) or a `Location` to fetch
them from (not to be cached). The multipart body is parsed with the standard library's `email`
package (BytesFeedParser, compat32 policy, which keeps binary payloads byte for byte); the
whole response is held in memory while it is parsed, which the size limit bounds.

Nothing is read past the size limit: a declared Content-Length over it is refused before the
body is read, and the body is counted as it arrives (after any content-encoding is undone).
Errors, as the client-server download endpoint defines them: too large -> 502 M_TOO_LARGE;
unknown at the origin -> 404 M_NOT_FOUND; not yet uploaded there -> 504 M_NOT_YET_UPLOADED;
unreachable, refusing us, or answering nonsense -> 502 M_UNKNOWN.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import Message
from typing import TypeVar
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
from asgiref.sync import sync_to_async
from django.conf import settings

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.xmatrix import authorization_header
from homeserver.services.federation import client, resolver
from homeserver.services.media.sniff import check_filename, normalize_content_type
from homeserver.services.signing_keys import server_signing_key
from homeserver.storage.media_staging import StagedFile, stage_stream

logger = logging.getLogger(__name__)
T = TypeVar("T")

FEDERATION_DOWNLOAD = "/_matrix/federation/v1/media/download/"
LEGACY_DOWNLOAD = "/_matrix/media/v3/download/"
# Room for the multipart framing and the metadata part around the content itself.
MULTIPART_OVERHEAD = 64 * 1024
MAX_ERROR_BODY = 64 * 1024
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Fetched:
    """Remote content, staged (storage/media_staging.py), with what its origin said of it."""

    staged: StagedFile
    content_type: str  # normalised; "" when the origin gave none or an invalid one
    filename: str  # from the origin's Content-Disposition; "" when none


class _Unrecognized(Exception):
    """The origin does not know the authenticated federation endpoint."""


def too_large(max_size: int) -> MatrixError:
    # Spec: GET /_matrix/client/v1/media/download "502: The content is too large for the
    # server to serve" (M_TOO_LARGE).
    return MatrixError(502, Errcode.TOO_LARGE,
                       f"Remote content is larger than this server serves ({max_size} bytes)")


def _unavailable(server_name: str, why: str) -> MatrixError:
    return MatrixError(502, Errcode.UNKNOWN, f"Could not fetch media from {server_name}: {why}")


async def _read_body(resp: httpx.Response, limit: int, on_over: MatrixError) -> bytes:
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit \
            and "content-encoding" not in resp.headers:
        raise on_over
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise on_over
        chunks.append(chunk)
    return b"".join(chunks)


async def _error_of(resp: httpx.Response) -> str:
    """The errcode of a remote error answer ("" when it has none)."""
    try:
        body = orjson.loads(await _read_body(resp, MAX_ERROR_BODY, MatrixError(
            502, Errcode.UNKNOWN, "error body too large")))
    except (orjson.JSONDecodeError, MatrixError, httpx.HTTPError):
        return ""
    errcode = body.get("errcode") if isinstance(body, dict) else None
    return errcode if isinstance(errcode, str) else ""


def _raise_for(server_name: str, status: int, errcode: str) -> None:
    if status == 404 and errcode != Errcode.UNRECOGNIZED:
        raise MatrixError(404, Errcode.NOT_FOUND, "Media not found")
    if errcode == Errcode.TOO_LARGE:
        raise MatrixError(502, Errcode.TOO_LARGE, f"{server_name} says the content is too large")
    if status == 504 and errcode == Errcode.NOT_YET_UPLOADED:
        raise MatrixError(504, Errcode.NOT_YET_UPLOADED, "Content has not yet been uploaded")
    raise _unavailable(server_name, f"HTTP {status} {errcode}".strip())


def _stage(data: bytes, max_size: int) -> StagedFile:
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = data[pos:pos + n]
        pos += len(chunk)
        return chunk

    try:
        return stage_stream(read, max_size=max_size)
    except MatrixError as e:
        if e.errcode == Errcode.TOO_LARGE:
            raise too_large(max_size) from None
        raise


def _described(headers: Message | httpx.Headers) -> tuple[str, str]:
    """(content type, file name) of a content part or a response, each "" when absent or
    not acceptable (an invalid type is served as application/octet-stream)."""
    try:
        content_type = normalize_content_type(headers.get("Content-Type"))
    except MatrixError:
        content_type = ""
    disposition = headers.get("Content-Disposition")
    filename = ""
    if disposition:
        holder = Message()
        holder["Content-Disposition"] = disposition
        try:
            filename = check_filename(holder.get_filename() or "")
        except MatrixError:
            filename = ""
    return content_type, filename


def _timeout(timeout_ms: int) -> httpx.Timeout:
    base = settings.PALISADE.federation.request_timeout_seconds
    return httpx.Timeout(base, read=base + timeout_ms / 1000)


async def _signed_get(server_name: str, path: str, query: dict[str, str], timeout_ms: int,
                      handle: Callable[[httpx.Response], Awaitable[T]]) -> T:
    """A signed GET to `server_name` (spec: "Request Authentication"), streaming: `handle`
    gets the open response. Refused destinations never see a connection
    (client.check_destination, REQUIREMENTS.md A_25534). client.request reads whole JSON
    answers, so this streams with the same resolution, private-address guard and TLS settings
    (client._target, client._verify) and the same X-Matrix signing."""
    await sync_to_async(client.check_destination)(server_name)
    cfg = settings.PALISADE
    try:
        target = await client._target(server_name)
    except client.FederationError as e:
        raise _unavailable(server_name, str(e)) from None
    uri = path + "?" + urlencode(query)
    auth = authorization_header("GET", uri, cfg.server_name, server_name, None,
                                server_signing_key())
    host = f"[{target.host}]" if ":" in target.host else target.host
    headers = {"Authorization": auth, "Host": target.host_header, "User-Agent": "Palisade"}
    extensions = {"sni_hostname": target.tls_name} if target.tls_name else {}
    try:
        async with httpx.AsyncClient(verify=client._verify(), timeout=_timeout(timeout_ms),
                                     follow_redirects=False) as http, \
                http.stream("GET", f"https://{host}:{target.port}{uri}", headers=headers,
                            extensions=extensions) as resp:
            return await handle(resp)
    except httpx.HTTPError as e:
        raise _unavailable(server_name, type(e).__name__) from None


def _parse_multipart(server_name: str, content_type: str, body: bytes) -> Message:
    """The content part (the second of exactly two) of a multipart/mixed answer."""
    parser = email.parser.BytesFeedParser(policy=email.policy.compat32)
    parser.feed(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n")
    parser.feed(body)
    message = parser.close()
    parts = message.get_payload() if message.is_multipart() else None
    if message.get_content_type() != "multipart/mixed" or not isinstance(parts, list) \
            or len(parts) != 2:
        raise _unavailable(server_name, "the answer is not multipart/mixed with two parts")
    metadata, content = parts
    try:
        meta = orjson.loads(metadata.get_payload(decode=True) or b"")
    except orjson.JSONDecodeError:
        meta = None
    if metadata.get_content_type() != "application/json" or not isinstance(meta, dict):
        raise _unavailable(server_name, "the metadata part is not a JSON object")
    return content


async def _follow(server_name: str, location: str, max_size: int, timeout_ms: int) -> Fetched:
    """The content part named a `Location`: fetch it (unauthenticated, size-limited; the
    address checked like every federation destination unless private addresses are allowed;
    never cached as a URL, per spec)."""
    for _ in range(MAX_REDIRECTS):
        url = urlsplit(location)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise _unavailable(server_name, "the redirect is not an http(s) URL")
        if not settings.PALISADE.federation.allow_private_addresses:
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                ips = await sync_to_async(resolver.addresses, thread_sensitive=False)(
                    url.hostname, port)
            except (OSError, ValueError):
                ips = []
            if not ips or any(resolver.is_private_address(ip) for ip in ips):
                raise _unavailable(server_name, "the redirect names a private address")
        try:
            async with httpx.AsyncClient(verify=client._verify(), timeout=_timeout(timeout_ms),
                                         follow_redirects=False) as http, \
                    http.stream("GET", location, headers={"User-Agent": "Palisade"}) as resp:
                if resp.is_redirect and resp.headers.get("location"):
                    location = str(resp.url.join(resp.headers["location"]))
                    continue
                if not resp.is_success:
                    raise _unavailable(server_name, f"the redirect answered {resp.status_code}")
                data = await _read_body(resp, max_size, too_large(max_size))
                content_type, filename = _described(resp.headers)
        except httpx.HTTPError as e:
            raise _unavailable(server_name, type(e).__name__) from None
        staged = await sync_to_async(_stage, thread_sensitive=False)(data, max_size)
        return Fetched(staged, content_type, filename)
    raise _unavailable(server_name, "too many redirects")


async def _federation(server_name: str, media_id: str, max_size: int,
                      timeout_ms: int) -> Fetched:
    async def handle(resp: httpx.Response) -> Fetched | str:
        if not resp.is_success:
            errcode = await _error_of(resp)
            if resp.status_code in (400, 404) and errcode == Errcode.UNRECOGNIZED:
                raise _Unrecognized()
            _raise_for(server_name, resp.status_code, errcode)
        content_type = resp.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/mixed"):
            raise _unavailable(server_name, "the answer is not multipart/mixed")
        body = await _read_body(resp, max_size + MULTIPART_OVERHEAD, too_large(max_size))
        content = _parse_multipart(server_name, content_type, body)
        location = content.get("Location")
        if location:
            return location
        data = content.get_payload(decode=True)
        if not isinstance(data, bytes):
            raise _unavailable(server_name, "the content part holds no bytes")
        part_type, filename = _described(content)
        staged = await sync_to_async(_stage, thread_sensitive=False)(data, max_size)
        return Fetched(staged, part_type, filename)

    result = await _signed_get(server_name, FEDERATION_DOWNLOAD + client.path_of(media_id),
                               {"timeout_ms": str(timeout_ms)}, timeout_ms, handle)
    if isinstance(result, str):
        return await _follow(server_name, result, max_size, timeout_ms)
    return result


async def _legacy(server_name: str, media_id: str, max_size: int, timeout_ms: int) -> Fetched:
    async def handle(resp: httpx.Response) -> Fetched:
        if not resp.is_success:
            _raise_for(server_name, resp.status_code, await _error_of(resp))
        data = await _read_body(resp, max_size, too_large(max_size))
        content_type, filename = _described(resp.headers)
        staged = await sync_to_async(_stage, thread_sensitive=False)(data, max_size)
        return Fetched(staged, content_type, filename)

    path = LEGACY_DOWNLOAD + client.path_of(server_name, media_id)
    # Spec: "When falling back, servers MUST be sure to set allow_remote to false."
    return await _signed_get(server_name, path,
                             {"allow_remote": "false", "timeout_ms": str(timeout_ms)},
                             timeout_ms, handle)


async def fetch(server_name: str, media_id: str, *, max_size: int, timeout_ms: int) -> Fetched:
    """The content of mxc://server_name/media_id from its origin, staged. The caller owns the
    staged file (storage/media_staging.discard)."""
    try:
        return await _federation(server_name, media_id, max_size, timeout_ms)
    except _Unrecognized:
        logger.info("%s does not serve federation media; using the legacy endpoint",
                    server_name)
    return await _legacy(server_name, media_id, max_size, timeout_ms)
