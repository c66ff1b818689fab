"""The media repository through the real server process, with a real Matrix client library
(matrix-nio) and raw HTTP: one user uploads, another downloads the same bytes through the
authenticated endpoint and gets a thumbnail of the size asked for; no token is 401; every bad
request gets its status and errcode and leaves no row (checked through the admin API) and no
file (checked on disk); a body cut short on the wire leaves nothing either."""

from __future__ import annotations

import asyncio
import io
import socket
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import nio
import pytest
from PIL import Image

from tests.live_server import start_server
from tests.media.conftest import image_bytes
from tests.media.test_thumbnails import png_claiming

pytestmark = pytest.mark.live
PASSWORD = "a long and proper password"
MAX_UPLOAD = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("live-media"), media={"max_upload_size": MAX_UPLOAD})
    s.admin = s.register_user("mediaadmin", PASSWORD, admin=True)
    yield s
    s.stop()


def media_root(server) -> Path:
    return server.config_path.parent / "media"


def stored_files(server) -> list[Path]:
    root = media_root(server)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def login(server, localpart: str) -> nio.AsyncClient:
    await asyncio.to_thread(server.register_user, localpart, PASSWORD)
    client = nio.AsyncClient(server.base_url, localpart)
    resp = await client.login(PASSWORD, device_name=f"{localpart}'s phone")
    assert isinstance(resp, nio.LoginResponse), resp
    return client


def auth(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def user_media(http: httpx.AsyncClient, server, user_id: str) -> dict:
    r = await http.get(f"/_synapse/admin/v1/users/{quote(user_id)}/media",
                       headers=auth(server.admin["access_token"]))
    assert r.status_code == 200, r.text
    return r.json()


async def test_nio_upload_then_another_user_downloads_and_thumbnails(server):
    alice, bob = await login(server, "alice"), await login(server, "bob")
    try:
        png = image_bytes((1000, 800))
        up, _ = await alice.upload(io.BytesIO(png), content_type="image/png",
                                   filename="Röntgen Befund.png", filesize=len(png))
        assert isinstance(up, nio.UploadResponse), up
        mxc = up.content_uri
        server_name, media_id = mxc.removeprefix("mxc://").split("/")
        assert server_name == server.server_name

        down = await bob.download(mxc=mxc)
        assert isinstance(down, nio.MemoryDownloadResponse), down
        assert down.body == png
        assert (down.content_type, down.filename) == ("image/png", "Röntgen Befund.png")

        crop = await bob.thumbnail(server_name, media_id, 96, 96, nio.ResizingMethod.crop)
        assert isinstance(crop, nio.ThumbnailResponse), crop
        assert Image.open(io.BytesIO(crop.body)).size == (96, 96)
        scale = await bob.thumbnail(server_name, media_id, 320, 240, nio.ResizingMethod.scale)
        assert Image.open(io.BytesIO(scale.body)).size == (320, 256)

        config = await bob.content_repository_config()
        assert isinstance(config, nio.ContentRepositoryConfigResponse), config
        assert config.upload_size == MAX_UPLOAD

        url = f"/_matrix/client/v1/media/download/{server_name}/{media_id}"
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            r = await http.get(url)
            assert (r.status_code, r.json()["errcode"]) == (401, "M_MISSING_TOKEN")
            r = await http.get(url, headers=auth("pal_not_a_token"))
            assert (r.status_code, r.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
            r = await http.get(f"{url}/{quote('Überweisung.png')}", headers=auth(bob.access_token))
            assert r.status_code == 200 and r.content == png
            assert r.headers["content-disposition"] == (
                "inline; filename*=utf-8''%C3%9Cberweisung.png")
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["content-security-policy"].startswith("sandbox;")
            legacy = await http.get(f"/_matrix/media/v3/download/{server_name}/{media_id}")
            assert (legacy.status_code, legacy.json()["errcode"]) == (404, "M_NOT_FOUND")
    finally:
        await alice.close()
        await bob.close()


async def test_each_bad_request_has_its_errcode_and_leaves_nothing(server):
    carol = await login(server, "carol")
    dave = await login(server, "dave")
    here = server.server_name
    v1 = "/_matrix/client/v1/media"
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            c, d = auth(carol.access_token), auth(dave.access_token)
            files_before = stored_files(server)
            created = (await http.post("/_matrix/media/v1/create", headers=c)).json()
            pending = created["content_uri"].rsplit("/", 1)[1]
            bomb = (await http.post("/_matrix/media/v3/upload", content=png_claiming(60000, 60000),
                                    headers={**c, "Content-Type": "image/png"})).json()
            bomb_id = bomb["content_uri"].rsplit("/", 1)[1]
            done = (await http.post("/_matrix/media/v1/create", headers=c)).json()
            done_id = done["content_uri"].rsplit("/", 1)[1]
            r = await http.put(f"/_matrix/media/v3/upload/{here}/{done_id}", content=b"first",
                               headers={**c, "Content-Type": "text/plain"})
            assert r.status_code == 200
            baseline = await user_media(http, server, carol.user_id)
            assert (baseline["total"], baseline["media_count"]) == (3, 2)
            files_baseline = stored_files(server)
            assert len(files_baseline) == len(files_before) + 2

            cases = [
                (http.post("/_matrix/media/v3/upload", content=b"x" * (MAX_UPLOAD + 1),
                           headers={**c, "Content-Type": "application/octet-stream"}),
                 413, "M_TOO_LARGE"),
                (http.put(f"/_matrix/media/v3/upload/{here}/{pending}",
                          content=b"x" * (MAX_UPLOAD + 1), headers=c), 413, "M_TOO_LARGE"),
                (http.post("/_matrix/media/v3/upload", content=b"x",
                           headers={**c, "Content-Type": "bogus"}), 400, "M_INVALID_PARAM"),
                (http.get(f"{v1}/download/{here}/bad%24id", headers=c), 400, "M_INVALID_PARAM"),
                (http.get(f"{v1}/download/{here}/AAAAAAAAAAAAAAAAAAAAAAAA", headers=c), 404,
                 "M_NOT_FOUND"),
                (http.get(f"{v1}/thumbnail/{here}/AAAAAAAAAAAAAAAAAAAAAAAA?width=8&height=8",
                          headers=c), 404, "M_NOT_FOUND"),
                (http.get("/_matrix/media/v3/upload", headers=c), 405, "M_UNRECOGNIZED"),
                (http.delete(f"{v1}/download/{here}/{done_id}", headers=c), 405,
                 "M_UNRECOGNIZED"),
                (http.put(f"/_matrix/media/v3/upload/{here}/{done_id}", content=b"second",
                          headers=c), 409, "M_CANNOT_OVERWRITE_MEDIA"),
                (http.put(f"/_matrix/media/v3/upload/{here}/{pending}", content=b"theirs",
                          headers=d), 403, "M_FORBIDDEN"),
                (http.put(f"/_matrix/media/v3/upload/{here}/AAAAAAAAAAAAAAAAAAAAAAAA",
                          content=b"x", headers=c), 404, "M_NOT_FOUND"),
                (http.get(f"{v1}/download/{here}/{pending}?timeout_ms=0", headers=d), 504,
                 "M_NOT_YET_UPLOADED"),
                (http.get(f"{v1}/thumbnail/{here}/{done_id}?width=abc&height=8", headers=c),
                 400, "M_INVALID_PARAM"),
                (http.get(f"{v1}/thumbnail/{here}/{done_id}?width=8&height=8&method=zoom",
                          headers=c), 400, "M_INVALID_PARAM"),
                (http.get(f"{v1}/thumbnail/{here}/{done_id}?width=8&height=8", headers=c), 400,
                 "M_UNKNOWN"),
                (http.get(f"{v1}/thumbnail/{here}/{bomb_id}?width=8&height=8", headers=c), 413,
                 "M_TOO_LARGE"),
            ]
            for request, status, errcode in cases:
                r = await request
                assert (r.status_code, r.json()["errcode"]) == (status, errcode), r.request.url

            after = await user_media(http, server, carol.user_id)
            assert after == baseline  # no row added, none changed (still one pending)
            assert stored_files(server) == files_baseline  # no file, no thumbnail, no staging
            r = await http.get(f"{v1}/download/{here}/{done_id}", headers=d)
            assert r.content == b"first"
    finally:
        await carol.close()
        await dave.close()


def raw_request(server, head: str, body: bytes) -> bytes:
    """Send `head` + `body`, then half-close: the body is as long as it is, whatever
    Content-Length said."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return received


async def test_body_shorter_than_content_length_leaves_no_file_and_no_row(server):
    erin = await login(server, "erin")
    here = server.server_name
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            c = auth(erin.access_token)
            pending = (await http.post("/_matrix/media/v1/create", headers=c)).json()
            pending_id = pending["content_uri"].rsplit("/", 1)[1]
            files_before = stored_files(server)
            for method, path in (("POST", "/_matrix/media/v3/upload?filename=cut.bin"),
                                 ("PUT", f"/_matrix/media/v3/upload/{here}/{pending_id}")):
                head = (f"{method} {path} HTTP/1.1\r\nHost: {here}\r\n"
                        f"Authorization: Bearer {erin.access_token}\r\n"
                        "Content-Type: application/octet-stream\r\n"
                        "Content-Length: 100000\r\n\r\n")
                answer = await asyncio.to_thread(raw_request, server, head, b"x" * 40000)
                assert b" 200 " not in answer.split(b"\r\n", 1)[0]

            deadline = time.monotonic() + 5  # give the server time to notice and clean up
            while time.monotonic() < deadline:
                listed = await user_media(http, server, erin.user_id)
                if stored_files(server) == files_before:
                    break
                await asyncio.sleep(0.2)
            assert stored_files(server) == files_before
            assert [m["pending"] for m in listed["media"]] == [True]
            assert (listed["media_count"], listed["media_length"]) == (0, 0)
            r = await http.get(
                f"/_matrix/client/v1/media/download/{here}/{pending_id}?timeout_ms=0", headers=c)
            assert (r.status_code, r.json()["errcode"]) == (504, "M_NOT_YET_UPLOADED")

            # The same upload, whole, works: the server is fine and the slot still usable.
            r = await http.put(f"/_matrix/media/v3/upload/{here}/{pending_id}",
                               content=b"x" * 100000, headers=c)
            assert r.status_code == 200, r.text
            r = await http.get(f"/_matrix/client/v1/media/download/{here}/{pending_id}",
                               headers=c)
            assert r.content == b"x" * 100000
    finally:
        await erin.close()


async def test_download_waits_for_an_async_upload(server):
    frank, grace = await login(server, "frank"), await login(server, "grace")
    here = server.server_name
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            created = (await http.post("/_matrix/media/v1/create",
                                       headers=auth(frank.access_token))).json()
            media_id = created["content_uri"].rsplit("/", 1)[1]
            waiting = asyncio.create_task(http.get(
                f"/_matrix/client/v1/media/download/{here}/{media_id}?timeout_ms=15000",
                headers=auth(grace.access_token)))
            await asyncio.sleep(0.5)
            assert not waiting.done()
            r = await http.put(f"/_matrix/media/v3/upload/{here}/{media_id}",
                               content=b"late but whole",
                               headers={**auth(frank.access_token), "Content-Type": "text/plain"})
            assert r.status_code == 200
            got = await asyncio.wait_for(waiting, 20)
            assert (got.status_code, got.content) == (200, b"late but whole")
            assert got.headers["content-type"] == "text/plain"
    finally:
        await frank.close()
        await grace.close()
