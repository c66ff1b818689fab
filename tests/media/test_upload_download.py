"""Upload and download over HTTP (in-process ASGI): content comes back byte-identical with the
headers the spec asks for, and each bad request gets its status and errcode and stores nothing."""

from __future__ import annotations

import hashlib

import pytest
from asgiref.sync import sync_to_async

from compliance import hooks
from homeserver.models import LocalMedia
from tests.accounts.conftest import aaudit_head, aaudit_since
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

CSP = ("sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
       "style-src 'unsafe-inline'; object-src 'self';")


async def test_upload_then_another_user_downloads_identical_bytes(api, media_store):
    alice, a_tok = await session(api)
    _, b_tok = await session(api)
    png = image_bytes((64, 48))
    r = await upload(api, a_tok, png, "image/png", filename="ward round.png")
    assert r.status_code == 200, r.json()
    media_id = media_id_of(r.json()["content_uri"])

    d = await get(api, f"{V1}/download/{server_name()}/{media_id}", b_tok)
    assert d.status_code == 200
    assert await body_of(d) == png
    assert d["Content-Type"] == "image/png"
    assert d["Content-Disposition"] == 'inline; filename="ward round.png"'
    assert d["Content-Length"] == str(len(png))
    assert d["X-Content-Type-Options"] == "nosniff"
    assert d["Content-Security-Policy"] == CSP
    assert d["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "private" in d["Cache-Control"]

    row = await sync_to_async(LocalMedia.objects.get)(media_id=media_id)
    assert (row.user_id, row.size, row.sha256) == (alice, len(png),
                                                  hashlib.sha256(png).hexdigest())
    assert (row.content_type, row.sniffed_type, row.upload_name) == ("image/png", "image/png",
                                                                     "ward round.png")
    stored = [p for p in files_under(media_store) if ".staging" not in p.parts]
    assert [p.read_bytes() for p in stored] == [png]
    assert not files_under(media_store / ".staging")


async def test_download_with_file_name_override_and_trailing_slash(api):
    _, tok = await session(api)
    r = await upload(api, tok, b"hello", "text/plain", filename="a.txt")
    media_id = media_id_of(r.json()["content_uri"])
    base = f"{V1}/download/{server_name()}/{media_id}"
    # (Non-ASCII names in the path: the live test; Django's test client decodes paths as
    # Latin-1.) A name that cannot be a quoted-string goes as RFC 6266 filename*.
    d = await get(api, f"{base}/Bericht%20%22final%22.txt", tok)
    assert d.status_code == 200 and await body_of(d) == b"hello"
    assert d["Content-Disposition"] == "inline; filename*=utf-8''Bericht%20%22final%22.txt"
    d = await get(api, f"{base}/", tok)  # matrix-nio asks for the download with a trailing /
    assert d.status_code == 200 and d["Content-Disposition"] == 'inline; filename="a.txt"'


@pytest.mark.parametrize(("declared", "data", "served", "disposition"), [
    # A claimed image must be that image (spec: "an encrypted file being claimed as image/png").
    ("image/png", b"\x00\x01 not a png at all", "application/octet-stream", "attachment"),
    ("image/jpeg", image_bytes((8, 8)), "application/octet-stream", "attachment"),
    ("image/jpeg", image_bytes((8, 8), "JPEG"), "image/jpeg", "inline"),
    # Types outside the spec's inline list keep their type, but only as an attachment.
    ("text/html", b"<script>alert(1)</script>", "text/html", "attachment"),
    ("image/svg+xml", b"<svg onload='x()'/>", "image/svg+xml", "attachment"),
    ("application/pdf", b"%PDF-1.7", "application/pdf", "attachment"),
    ("text/plain; charset=utf-8", "Grüße".encode(), "text/plain; charset=utf-8", "inline"),
    ("Video/MP4", b"\x00\x00\x00\x18ftypmp42", "video/mp4", "inline"),
    (None, b"anything", "application/octet-stream", "attachment"),
])
async def test_served_content_type_and_disposition(api, declared, data, served, disposition):
    _, tok = await session(api)
    r = await upload(api, tok, data, declared)
    assert r.status_code == 200, r.json()
    d = await get(api, f"{V1}/download/{server_name()}/{media_id_of(r.json()['content_uri'])}",
                  tok)
    assert (d["Content-Type"], d["Content-Disposition"]) == (served, disposition)
    assert await body_of(d) == data


async def test_config_reports_the_upload_limit(api, settings):
    configure(settings, media={"max_upload_size": 12345})
    _, tok = await session(api)
    r = await get(api, f"{V1}/config", tok)
    assert r.status_code == 200 and r.json() == {"m.upload.size": 12345}
    r = await get(api, f"{V1}/config")
    assert (r.status_code, r.json()["errcode"]) == (401, "M_MISSING_TOKEN")


async def test_too_large_upload_is_413_and_stores_nothing(api, settings, media_store):
    configure(settings, media={"max_upload_size": 1000})
    _, tok = await session(api)
    r = await upload(api, tok, b"x" * 1001, "application/octet-stream")
    assert (r.status_code, r.json()["errcode"]) == (413, "M_TOO_LARGE")
    assert await acounts(media_store) == (0, 0, 0)
    r = await upload(api, tok, b"x" * 1000, "application/octet-stream")
    assert r.status_code == 200


async def test_upload_errors_store_nothing(api, media_store):
    _, tok = await session(api)
    cases = [
        (await upload(api, None, b"data"), 401, "M_MISSING_TOKEN"),
        (await upload(api, "not-a-token", b"data"), 401, "M_UNKNOWN_TOKEN"),
        (await upload(api, tok, b"data", "not a media type"), 400, "M_INVALID_PARAM"),
        (await upload(api, tok, b"data", "text/plain", filename="a\nb"), 400,
         "M_INVALID_PARAM"),
        (await upload(api, tok, b"data", "text/plain", filename="x" * 256), 400,
         "M_INVALID_PARAM"),
        (await get(api, f"{LEGACY}/upload", tok), 405, "M_UNRECOGNIZED"),
        (await upload(api, tok, b"data", path=f"{LEGACY}/upload", method="put"), 405,
         "M_UNRECOGNIZED"),
    ]
    for response, status, errcode in cases:
        assert (response.status_code, response.json()["errcode"]) == (status, errcode)
    assert await acounts(media_store) == (0, 0, 0)


async def test_download_errors(api, settings):
    configure(settings, federation={"allow_list": ("friend.example",)})
    _, tok = await session(api)
    r = await upload(api, tok, b"data", "text/plain")
    media_id = media_id_of(r.json()["content_uri"])
    here = server_name()
    cases = [
        (f"{V1}/download/{here}/{media_id}", None, 401, "M_MISSING_TOKEN"),
        (f"{V1}/download/{here}/AAAAAAAAAAAAAAAAAAAAAAAA", tok, 404, "M_NOT_FOUND"),
        (f"{V1}/download/{here}/bad$id", tok, 400, "M_INVALID_PARAM"),
        (f"{V1}/download/{here}/..", tok, 400, "M_INVALID_PARAM"),
        (f"{V1}/download/not_a%20server/{media_id}", tok, 400, "M_INVALID_PARAM"),
        # Another server's media is fetched over federation (tests/federation/
        # test_media_federation.py); one off the federation list is refused before any lookup.
        (f"{V1}/download/other.example.org/{media_id}", tok, 403, "M_FORBIDDEN"),
        (f"{V1}/download/{here}/{media_id}?timeout_ms=soon", tok, 400, "M_INVALID_PARAM"),
        (f"{V1}/download/{here}/{media_id}/bad%01name", tok, 400, "M_INVALID_PARAM"),
    ]
    for path, token, status, errcode in cases:
        response = await get(api, path, token)
        assert (response.status_code, response.json()["errcode"]) == (status, errcode), path
    r = await api.client.post(f"{V1}/download/{here}/{media_id}",
                              headers={"Authorization": f"Bearer {tok}"})
    assert (r.status_code, r.json()["errcode"]) == (405, "M_UNRECOGNIZED")


async def test_legacy_endpoints_are_frozen_by_default(api, settings):
    _, tok = await session(api)
    r = await upload(api, tok, image_bytes((200, 200)), "image/png")
    ref = f"{server_name()}/{media_id_of(r.json()['content_uri'])}"
    for path in (f"{LEGACY}/download/{ref}", f"{LEGACY}/download/{ref}/x.png",
                 f"{LEGACY}/thumbnail/{ref}?width=32&height=32", f"{LEGACY}/config"):
        for token in (None, tok):
            response = await get(api, path, token)
            assert (response.status_code, response.json()["errcode"]) == (404, "M_NOT_FOUND")

    configure(settings, media={"legacy_unauthenticated_endpoints": True})
    d = await get(api, f"{LEGACY}/download/{ref}")
    assert d.status_code == 200 and d["Content-Type"] == "image/png"
    t = await get(api, f"{LEGACY}/thumbnail/{ref}?width=32&height=32&method=crop")
    assert t.status_code == 200 and t["Content-Type"] == "image/png"
    c = await get(api, f"{LEGACY}/config", tok)
    assert c.json() == {"m.upload.size": 50 * 1024 * 1024}


async def test_rate_limited_upload_is_429_and_stores_nothing_more(api, settings, media_store):
    configure(settings, rate_limits={"enabled": True,
                                     "media_upload": {"per_second": 0.01, "burst": 1}})
    _, tok = await session(api)
    assert (await upload(api, tok, b"one", "text/plain")).status_code == 200
    before = await acounts(media_store)
    r = await upload(api, tok, b"two", "text/plain")
    assert (r.status_code, r.json()["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert r.json()["retry_after_ms"] > 0
    assert await acounts(media_store) == before


async def test_media_upload_policy_denial_is_audited_and_stores_nothing(api, media_store):
    def no_pdfs(ctx):
        if ctx["sniffed_type"] == "application/pdf":
            return hooks.Deny(rule="test.no_pdf", reason="PDFs are not allowed here")
        return hooks.ALLOW

    seen = []

    def spy(ctx):
        seen.append(ctx)
        return hooks.ALLOW

    hooks.register(hooks.Hook.MEDIA_UPLOAD, spy)
    hooks.register(hooks.Hook.MEDIA_UPLOAD, no_pdfs)
    try:
        user, tok = await session(api)
        head = await aaudit_head()
        r = await upload(api, tok, b"%PDF-1.4 ...", "application/octet-stream")
        assert (r.status_code, r.json()) == (403, {"errcode": "M_FORBIDDEN",
                                                   "error": "PDFs are not allowed here"})
        assert await acounts(media_store) == (0, 0, 0)
        [denied] = await aaudit_since(head)
        assert (denied.action, denied.actor, denied.target) == (4001, user, "")
        assert '"hook":"media_upload"' in denied.details and "test.no_pdf" in denied.details
        assert '"size":12' in denied.details and "%PDF" not in denied.details
        assert seen[0] == {"actor": user, "target": "", "content_type": "application/octet-stream",
                           "size": 12, "sniffed_type": "application/pdf", "value": None}
        assert (await upload(api, tok, b"fine", "text/plain")).status_code == 200
        assert await aaudit_since(head) == [denied]  # uploads themselves are not audited
    finally:
        for policy in (spy, no_pdfs):
            hooks.unregister(hooks.Hook.MEDIA_UPLOAD, policy)
