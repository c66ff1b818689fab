"""Asynchronous uploads (spec v1.7): POST /_matrix/media/v1/create reserves an mxc:// URI,
PUT /_matrix/media/v3/upload/{serverName}/{mediaId} fills it once, by its creator only;
downloads wait for it (timeout_ms) and answer 504 M_NOT_YET_UPLOADED when it does not come."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from homeserver.models import LocalMedia
from homeserver.services.media.lifecycle import purge_expired_pending
from tests.media.conftest import (
    LEGACY,
    V1,
    acounts,
    body_of,
    configure,
    files_under,
    get,
    image_bytes,
    media_id_of,
    server_name,
    session,
    upload,
)

pytestmark = pytest.mark.django_db(transaction=True)
CREATE = "/_matrix/media/v1/create"


async def create(api, token: str) -> str:
    r = await api.call("POST", CREATE, token=token)
    assert r.status_code == 200, r.json()
    return media_id_of(r.json()["content_uri"])


def put_path(media_id: str, server: str | None = None) -> str:
    return f"{LEGACY}/upload/{server or server_name()}/{media_id}"


async def put(api, token, media_id, data=b"content", content_type="text/plain", **kw):
    return await upload(api, token, data, content_type, path=put_path(media_id, **kw),
                        method="put")


async def test_create_then_upload_then_download(api, media_store):
    _, a_tok = await session(api)
    _, b_tok = await session(api)
    before = int(time.time() * 1000)
    r = await api.call("POST", CREATE, token=a_tok)
    assert r.status_code == 200
    expires = r.json()["unused_expires_at"]
    assert before + 24 * 3600 * 1000 <= expires <= int(time.time() * 1000) + 24 * 3600 * 1000
    media_id = media_id_of(r.json()["content_uri"])
    assert await acounts(media_store) == (1, 0, 0)  # a row, no file yet

    png = image_bytes((40, 40))
    r = await upload(api, a_tok, png, "image/png", filename="scan.png",
                     path=put_path(media_id), method="put")
    assert (r.status_code, r.json()) == (200, {})
    d = await get(api, f"{V1}/download/{server_name()}/{media_id}", b_tok)
    assert d.status_code == 200 and await body_of(d) == png
    assert d["Content-Disposition"] == 'inline; filename="scan.png"'
    row = await sync_to_async(LocalMedia.objects.get)(media_id=media_id)
    assert row.upload_ts is not None and row.unused_expires_ts is None and row.size == len(png)


async def test_pending_media_is_504_not_yet_uploaded(api):
    _, tok = await session(api)
    media_id = await create(api, tok)
    ref = f"{server_name()}/{media_id}"
    for path in (f"{V1}/download/{ref}?timeout_ms=0",
                 f"{V1}/thumbnail/{ref}?width=32&height=32&timeout_ms=0"):
        r = await get(api, path, tok)
        assert (r.status_code, r.json()["errcode"]) == (504, "M_NOT_YET_UPLOADED")
    started = time.monotonic()
    r = await get(api, f"{V1}/download/{ref}?timeout_ms=300", tok)
    assert (r.status_code, r.json()["errcode"]) == (504, "M_NOT_YET_UPLOADED")
    assert time.monotonic() - started >= 0.3  # it did wait
    r = await get(api, f"{V1}/download/{ref}?timeout_ms=-1", tok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")


async def test_waiting_download_gets_the_content_when_it_lands(api):
    _, tok = await session(api)
    media_id = await create(api, tok)
    waiting = asyncio.create_task(
        get(api, f"{V1}/download/{server_name()}/{media_id}?timeout_ms=15000", tok))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    assert (await put(api, tok, media_id, b"arrived")).status_code == 200
    d = await asyncio.wait_for(waiting, 20)
    assert d.status_code == 200 and await body_of(d) == b"arrived"


async def test_only_the_creator_uploads_and_only_once(api, media_store):
    _, a_tok = await session(api)
    _, b_tok = await session(api)
    media_id = await create(api, a_tok)

    r = await put(api, b_tok, media_id, b"intruder")
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert await acounts(media_store) == (1, 0, 0)

    assert (await put(api, a_tok, media_id, b"first")).status_code == 200
    r = await put(api, a_tok, media_id, b"second")
    assert (r.status_code, r.json()["errcode"]) == (409, "M_CANNOT_OVERWRITE_MEDIA")
    r = await put(api, b_tok, media_id, b"second")
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    d = await get(api, f"{V1}/download/{server_name()}/{media_id}", b_tok)
    assert await body_of(d) == b"first"
    assert await acounts(media_store) == (1, 0, 1)

    # Media from POST /upload cannot be overwritten either.
    r = await upload(api, a_tok, b"plain upload", "text/plain")
    plain = media_id_of(r.json()["content_uri"])
    r = await put(api, a_tok, plain, b"overwrite")
    assert (r.status_code, r.json()["errcode"]) == (409, "M_CANNOT_OVERWRITE_MEDIA")


async def test_put_errors(api, settings, media_store):
    _, tok = await session(api)
    media_id = await create(api, tok)
    cases = [
        (await put(api, None, media_id), 401, "M_MISSING_TOKEN"),
        (await put(api, tok, "AAAAAAAAAAAAAAAAAAAAAAAA"), 404, "M_NOT_FOUND"),
        (await put(api, tok, media_id, server="elsewhere.example"), 404, "M_NOT_FOUND"),
        (await put(api, tok, "bad$id"), 400, "M_INVALID_PARAM"),
        (await put(api, tok, media_id, content_type="no/such/type"), 400, "M_INVALID_PARAM"),
        (await upload(api, tok, b"x", path=put_path(media_id), method="post"), 405,
         "M_UNRECOGNIZED"),
    ]
    for response, status, errcode in cases:
        assert (response.status_code, response.json()["errcode"]) == (status, errcode)
    configure(settings, media={"max_upload_size": 10})
    r = await put(api, tok, media_id, b"x" * 11)
    assert (r.status_code, r.json()["errcode"]) == (413, "M_TOO_LARGE")
    # Still pending, still without a file; the creator can upload within the limit.
    assert await acounts(media_store) == (1, 0, 0)
    assert not files_under(media_store / ".staging")
    assert (await put(api, tok, media_id, b"x" * 10)).status_code == 200


async def test_expired_pending_upload_is_gone(api):
    _, tok = await session(api)
    media_id = await create(api, tok)
    past = int(time.time() * 1000) - 1
    await sync_to_async(LocalMedia.objects.filter(media_id=media_id).update)(
        unused_expires_ts=past)
    r = await put(api, tok, media_id)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    r = await get(api, f"{V1}/download/{server_name()}/{media_id}?timeout_ms=0", tok)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    assert await sync_to_async(purge_expired_pending)() == 1
    assert not await sync_to_async(LocalMedia.objects.filter(media_id=media_id).exists)()


async def test_pending_uploads_per_user_are_limited(api, settings):
    configure(settings, media={"max_pending_uploads": 2})
    _, tok = await session(api)
    _, other = await session(api)
    first = await create(api, tok)
    await create(api, tok)
    r = await api.call("POST", CREATE, token=tok)
    assert (r.status_code, r.json()["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    await create(api, other)  # per user
    assert (await put(api, tok, first)).status_code == 200  # uploading frees a slot
    await create(api, tok)
    r = await api.call("POST", CREATE)
    assert (r.status_code, r.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    assert await sync_to_async(LocalMedia.objects.count)() == 4
