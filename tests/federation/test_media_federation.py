"""Media over federation (issue 7), both directions, with real servers.

- Serving: our GET /_matrix/federation/v1/media/{download,thumbnail}/{mediaId} (spec:
  server-server API "Content Repository") to a signed request (in-process), and to a real
  Synapse whose user downloads a Palisade upload (Synapse fetches it from our live federation
  listener).
- Fetching: a user of a live, federating Palisade downloads media uploaded on a real Synapse;
  the second download is served from the cache (Synapse's access log shows one fetch, the
  cache row is in the live server's database); too large -> 502 M_TOO_LARGE and nothing kept;
  unknown -> 404; an unlisted server -> 403, audited, and Synapse never asked.

Multipart answers are parsed here with the standard library's `email` package, as the
fetcher does; the Synapse tests check the other direction with Synapse's own parser.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import io
import os
import sqlite3
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import AsyncClient
from PIL import Image

from audit.actions import AuditAction
from audit.models import AuditRecord
from homeserver.models import LocalMedia, RemoteMedia
from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.signing import generate_signing_key, public_key_base64, sign_json
from homeserver.protocol.xmatrix import authorization_header
from homeserver.storage.server_keys import StoredKey, store_key
from tests.accounts.conftest import configure
from tests.federation.peers import start_palisade_peer
from tests.federation.synapse import synapse_fixture  # noqa: F401 - fixture synapse
from tests.federation.tls import self_signed
from tests.media.conftest import (  # noqa: F401 - media_store is an autouse fixture
    body_of,
    files_under,
    image_bytes,
    media_id_of,
    media_store,
    session,
    upload,
)

PASSWORD = "a long and proper password"
REMOTE = "remote.example:8448"
KEY = generate_signing_key()
FED = "/_matrix/federation/v1/media"
CLIENT_MEDIA = "/_matrix/client/v1/media"
PEER_MAX_SIZE = 256 * 1024  # the live peer's [media] max_upload_size


def parse_multipart(content_type: str, body: bytes) -> list:
    parser = email.parser.BytesFeedParser(policy=email.policy.compat32)
    parser.feed(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    message = parser.close()
    assert message.get_content_type() == "multipart/mixed"
    return message.get_payload()


# --- serving our media to a signed request (in-process) ---------------------------------------


@pytest.fixture
def remote_key_known():
    """As if we had fetched remote.example's keys before (its key server is not running)."""
    doc = sign_json({"server_name": REMOTE, "valid_until_ts": int(time.time() * 1000) + 3600_000,
                     "verify_keys": {KEY.key_id: {"key": public_key_base64(KEY)}}}, REMOTE, KEY)
    store_key(StoredKey(REMOTE, KEY.key_id, public_key_base64(KEY), doc["valid_until_ts"], None,
                        encode_canonical_json(doc).decode()), 0)


def signed(path: str) -> dict:
    return {"headers": {"Authorization": authorization_header(
        "GET", path, REMOTE, settings.PALISADE.server_name, None, KEY)}}


async def fed_get(path: str, *, sign: bool = True):
    return await AsyncClient().get(path, **(signed(path) if sign else {}))


@pytest.mark.django_db(transaction=True)
async def test_serves_local_media_as_multipart(api, remote_key_known):
    _, token = await session(api)
    data = bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n\r"
    r = await upload(api, token, data, "application/pdf", filename="Befund ä.pdf")
    media_id = media_id_of(r.json()["content_uri"])

    r = await fed_get(f"{FED}/download/{media_id}")
    assert r.status_code == 200
    body = await body_of(r)
    assert int(r["Content-Length"]) == len(body)
    assert r["X-Content-Type-Options"] == "nosniff"
    metadata, content = parse_multipart(r["Content-Type"], body)
    assert metadata.get_content_type() == "application/json"
    assert orjson.loads(metadata.get_payload(decode=True)) == {}
    assert content.get_payload(decode=True) == data  # inline bytes, never a Location
    assert content.get("Location") is None
    assert content.get_content_type() == "application/pdf"
    assert content.get("Content-Disposition").startswith("attachment")
    assert content.get_filename() == "Befund ä.pdf"


@pytest.mark.django_db(transaction=True)
async def test_serves_thumbnails_of_local_media(api, remote_key_known):
    _, token = await session(api)
    r = await upload(api, token, image_bytes((1000, 800)), "image/png")
    media_id = media_id_of(r.json()["content_uri"])

    r = await fed_get(f"{FED}/thumbnail/{media_id}?width=96&height=96&method=crop")
    assert r.status_code == 200
    _, content = parse_multipart(r["Content-Type"], await body_of(r))
    assert content.get_content_type() in ("image/png", "image/jpeg", "image/webp")
    assert Image.open(io.BytesIO(content.get_payload(decode=True))).size == (96, 96)
    r = await fed_get(f"{FED}/thumbnail/{media_id}?width=0&height=96")
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")


@pytest.mark.django_db(transaction=True)
async def test_unknown_quarantined_unsigned_and_unlisted_requests(api, settings,
                                                                  remote_key_known):
    _, token = await session(api)
    r = await upload(api, token, b"secret", "text/plain")
    media_id = media_id_of(r.json()["content_uri"])

    r = await fed_get(f"{FED}/download/{media_id}", sign=False)
    assert (r.status_code, r.json()["errcode"]) == (401, "M_UNAUTHORIZED")
    r = await fed_get(f"{FED}/download/AAAAAAAAAAAAAAAAAAAAAAAA")
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    r = await fed_get(f"{FED}/download/bad.id")
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")

    await sync_to_async(LocalMedia.objects.filter(media_id=media_id).update)(
        quarantined_by="@admin:test", quarantined_ts=1)
    for path in (f"{FED}/download/{media_id}", f"{FED}/thumbnail/{media_id}?width=32&height=32"):
        r = await fed_get(path)
        assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND"), path

    configure(settings, federation={"allow_list": ("friend.example",)})
    r = await fed_get(f"{FED}/download/{media_id}")
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")


# --- refusals before anything is fetched (in-process, against a real Synapse) -----------------


def synapse_upload(synapse, user: dict, data: bytes, content_type: str,
                   filename: str) -> str:
    """POST /_matrix/media/v3/upload on Synapse; the media ID of the new mxc:// URI."""
    r = httpx.post(synapse.base_url + "/_matrix/media/v3/upload",
                   params={"filename": filename}, content=data, timeout=60,
                   headers={"Authorization": f"Bearer {user['access_token']}",
                            "Content-Type": content_type})
    assert r.status_code == 200, r.text
    uri = r.json()["content_uri"]
    assert uri.startswith(f"mxc://{synapse.server_name}/")
    return uri.rsplit("/", 1)[1]


def fetches_seen_by(synapse, media_id: str) -> int:
    """How often Synapse was asked for `media_id` over federation (its access log)."""
    log = synapse.log()
    return log.count(f"/_matrix/federation/v1/media/download/{media_id}") \
        + log.count(f"/_matrix/media/v3/download/{quote(synapse.server_name)}/{media_id}")


@pytest.fixture(scope="module")
def synapse_user(synapse):
    return synapse.register_user("uploader", PASSWORD)


@pytest.mark.django_db(transaction=True)
async def test_unlisted_server_media_is_403_audited_and_never_fetched(api, settings, synapse,
                                                                      synapse_user):
    media_id = await sync_to_async(synapse_upload)(synapse, synapse_user, b"hello", "text/plain",
                                                   "a.txt")
    configure(settings, federation={"allow_list": ("hospital-b.example",), "verify_tls": False,
                                    "allow_private_addresses": True})
    user, token = await session(api)
    before = await sync_to_async(AuditRecord.objects.count)()

    for path in (f"{CLIENT_MEDIA}/download/{synapse.server_name}/{media_id}",
                 f"{CLIENT_MEDIA}/thumbnail/{synapse.server_name}/{media_id}?width=32&height=32"):
        r = await api.call("GET", path, token=token)
        assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN"), path

    records = await sync_to_async(list)(AuditRecord.objects.order_by("seq")[before:])
    assert len(records) == 2  # one POLICY_DENIED per request
    assert {r.action for r in records} == {AuditAction.POLICY_DENIED}
    details = records[0].details if isinstance(records[0].details, dict) else orjson.loads(
        records[0].details)
    assert records[0].actor == user
    assert details["rule"] == "federation.allow_list"
    assert details["destination"] == synapse.server_name
    assert await sync_to_async(RemoteMedia.objects.count)() == 0
    assert files_under(Path(settings.PALISADE.media_path)) == []
    assert fetches_seen_by(synapse, media_id) == 0


@pytest.mark.django_db(transaction=True)
async def test_unreachable_server_is_502_and_legacy_endpoints_never_fetch(api, settings):
    configure(settings, federation={"verify_tls": False, "allow_private_addresses": True},
              media={"legacy_unauthenticated_endpoints": True})
    _, token = await session(api)
    closed = "127.0.0.1:1"  # nothing listens on port 1
    r = await api.call("GET", f"{CLIENT_MEDIA}/download/{closed}/abcdef", token=token)
    assert (r.status_code, r.json()["errcode"]) == (502, "M_UNKNOWN")
    r = await api.call("GET", f"/_matrix/media/v3/download/{closed}/abcdef")
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    r = await api.call("GET", f"{CLIENT_MEDIA}/download/{closed}/bad.id", token=token)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert await sync_to_async(RemoteMedia.objects.count)() == 0
    assert files_under(Path(settings.PALISADE.media_path)) == []


# --- protocol edge cases a real Synapse cannot be made to produce (in-process) ----------------


class OriginDouble:
    """TEST DOUBLE of an origin media server: a real HTTPS listener on loopback (self-signed,
    tests/federation/tls.py) answering scripted responses, recording every request. Synapse
    always serves the authenticated endpoint inline; this answers 404 M_UNRECOGNIZED (older
    servers), Location redirects, broken multipart and error codes, which the fetcher must
    handle per spec. It does not check signatures (the Synapse tests show those are right)."""

    def __init__(self, tmp: Path) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, str]] = []  # (path with query, Authorization)
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                double.requests.append((self.path, self.headers.get("Authorization", "")))
                route = self.path.split("?", 1)[0]
                status, headers, body = double.routes.get(route, (
                    404, {"Content-Type": "application/json"},
                    b'{"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}'))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        cert, key = self_signed(tmp)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def server_name(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def federation_path(self, media_id: str) -> str:
        return f"/_matrix/federation/v1/media/download/{media_id}"

    def legacy_path(self, media_id: str) -> str:
        return f"/_matrix/media/v3/download/{quote(self.server_name, safe='')}/{media_id}"

    def multipart(self, media_id: str, second_part: bytes, *, parts: int = 2) -> None:
        boundary = "6b1f0e2d"
        body = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n".encode()
                + (f"--{boundary}\r\n".encode() + second_part + b"\r\n" if parts == 2 else b"")
                + f"--{boundary}--\r\n".encode())
        self.routes[self.federation_path(media_id)] = (
            200, {"Content-Type": f"multipart/mixed; boundary={boundary}"}, body)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origin(tmp_path, settings):
    configure(settings, federation={"verify_tls": False, "allow_private_addresses": True})
    double = OriginDouble(tmp_path)
    yield double
    double.stop()


@pytest.mark.django_db(transaction=True)
async def test_falls_back_to_legacy_endpoint_on_unrecognized(api, origin):
    # Spec: server-server "Content Repository": on 404 M_UNRECOGNIZED, the deprecated
    # endpoint, with allow_remote=false.
    origin.routes[origin.legacy_path("old1")] = (
        200, {"Content-Type": "text/plain", "Content-Disposition": "inline; filename=notes.txt"},
        b"from an older server")
    _, token = await session(api)
    path = f"{CLIENT_MEDIA}/download/{origin.server_name}/old1"
    r = await api.call("GET", path, token=token)
    assert r.status_code == 200
    assert await body_of(r) == b"from an older server"
    assert r["Content-Type"] == "text/plain"
    assert r["Content-Disposition"] == 'inline; filename="notes.txt"'
    (fed, fed_auth), (legacy, legacy_auth) = origin.requests
    assert fed.startswith(origin.federation_path("old1"))
    assert legacy.startswith(origin.legacy_path("old1") + "?") and "allow_remote=false" in legacy
    assert fed_auth.startswith("X-Matrix ") and legacy_auth.startswith("X-Matrix ")

    r = await api.call("GET", path, token=token)  # cached: the origin is not asked again
    assert r.status_code == 200 and await body_of(r) == b"from an older server"
    assert len(origin.requests) == 2


@pytest.mark.django_db(transaction=True)
async def test_follows_a_location_part_and_caches_the_bytes(api, origin):
    target = f"https://{origin.server_name}/cdn/blob"
    origin.routes["/cdn/blob"] = (200, {"Content-Type": "image/png"}, image_bytes((64, 48)))
    origin.multipart("loc1", f"Location: {target}\r\n\r\n".encode())
    _, token = await session(api)
    r = await api.call("GET", f"{CLIENT_MEDIA}/download/{origin.server_name}/loc1", token=token)
    assert r.status_code == 200
    assert Image.open(io.BytesIO(await body_of(r))).size == (64, 48)
    assert r["Content-Type"] == "image/png"
    assert len(origin.requests) == 2
    assert origin.requests[0][0].startswith(origin.federation_path("loc1") + "?")
    assert origin.requests[1][0] == "/cdn/blob"
    assert origin.requests[1][1] == ""  # the redirect target gets no X-Matrix header
    row = await sync_to_async(RemoteMedia.objects.get)(server_name=origin.server_name,
                                                       media_id="loc1")
    assert row.sniffed_type == "image/png"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("answer, expected", [
    ("one_part", (502, "M_UNKNOWN")),
    ("not_multipart", (502, "M_UNKNOWN")),
    ("not_found", (404, "M_NOT_FOUND")),
    ("not_yet", (504, "M_NOT_YET_UPLOADED")),
    ("too_large_there", (502, "M_TOO_LARGE")),
    ("forbidden", (502, "M_UNKNOWN")),
    ("too_large_here", (502, "M_TOO_LARGE")),
])
async def test_bad_or_failed_answers_leave_nothing(api, origin, settings, answer, expected):
    def error(status: int, errcode: str) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json"}, orjson.dumps(
            {"errcode": errcode, "error": "no"})

    path = origin.federation_path("m1")
    if answer == "one_part":
        origin.multipart("m1", b"", parts=1)
    elif answer == "not_multipart":
        origin.routes[path] = (200, {"Content-Type": "image/png"}, image_bytes((10, 10)))
    elif answer == "too_large_here":
        configure(settings, media={"max_upload_size": 1000})
        origin.multipart("m1", b"Content-Type: application/octet-stream\r\n\r\n" + b"x" * 1001)
    else:
        origin.routes[path] = {
            "not_found": error(404, "M_NOT_FOUND"), "forbidden": error(403, "M_FORBIDDEN"),
            "not_yet": error(504, "M_NOT_YET_UPLOADED"), "too_large_there": error(502,
                                                                                 "M_TOO_LARGE"),
        }[answer]
    _, token = await session(api)
    r = await api.call("GET", f"{CLIENT_MEDIA}/download/{origin.server_name}/m1", token=token)
    assert (r.status_code, r.json()["errcode"]) == expected
    assert len(origin.requests) == 1  # no legacy fallback: only M_UNRECOGNIZED leads there
    assert await sync_to_async(RemoteMedia.objects.count)() == 0
    assert files_under(Path(settings.PALISADE.media_path)) == []


@pytest.mark.django_db(transaction=True)
async def test_concurrent_downloads_share_one_fetch(api, origin):
    data = os.urandom(30_000)
    origin.multipart("c1", b"Content-Type: application/octet-stream\r\n\r\n" + data)
    _, token = await session(api)
    path = f"{CLIENT_MEDIA}/download/{origin.server_name}/c1"
    responses = await asyncio.gather(*(api.call("GET", path, token=token) for _ in range(4)))
    assert [r.status_code for r in responses] == [200] * 4
    assert all([await body_of(r) == data for r in responses])
    assert len(origin.requests) == 1
    assert await sync_to_async(RemoteMedia.objects.count)() == 1


@pytest.mark.django_db(transaction=True)
async def test_admin_quarantines_and_deletes_cached_remote_media(api, origin, settings):
    png = image_bytes((120, 90))
    origin.multipart("q1", b"Content-Type: image/png\r\n\r\n" + png)
    _, token = await session(api)
    admin, admin_token = await session(api, admin=True)
    ref = f"{origin.server_name}/q1"
    download, thumb = f"{CLIENT_MEDIA}/download/{ref}", f"{CLIENT_MEDIA}/thumbnail/{ref}"
    r = await api.call("GET", thumb + "?width=32&height=32&method=crop", token=token)
    assert r.status_code == 200
    root = Path(settings.PALISADE.media_path)
    assert len(files_under(root / "remote")) == 1 and len(files_under(root / "remote_thumbnails"))

    before = await sync_to_async(AuditRecord.objects.count)()
    r = await api.call("POST", f"/_synapse/admin/v1/media/quarantine/{ref}", {},
                       token=admin_token)
    assert r.status_code == 200, r.json()
    for path in (download, thumb + "?width=32&height=32"):
        r = await api.call("GET", path, token=token)
        assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    r = await api.call("POST", f"/_synapse/admin/v1/media/unquarantine/{ref}", {},
                       token=admin_token)
    assert r.status_code == 200
    assert (await api.call("GET", download, token=token)).status_code == 200
    assert len(origin.requests) == 1  # all of it from the cache

    r = await api.call("DELETE", f"/_synapse/admin/v1/media/{ref}", token=admin_token)
    assert r.json() == {"deleted_media": ["q1"], "total": 1}
    assert await sync_to_async(RemoteMedia.objects.count)() == 0
    assert files_under(root / "remote") == [] and files_under(root / "remote_thumbnails") == []
    records = await sync_to_async(list)(AuditRecord.objects.order_by("seq")[before:])
    assert [(r.action, r.actor, r.target) for r in records] == [
        (AuditAction.MEDIA_QUARANTINED, admin, f"mxc://{ref}"),
        (AuditAction.MEDIA_UNQUARANTINED, admin, f"mxc://{ref}"),
        (AuditAction.MEDIA_DELETED, admin, f"mxc://{ref}")]
    r = await api.call("DELETE", f"/_synapse/admin/v1/media/{ref}", token=admin_token)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")

    assert (await api.call("GET", download, token=token)).status_code == 200  # fetched again
    assert len(origin.requests) == 2


# --- live: a federating Palisade and a real Synapse -------------------------------------------


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    """A live, federating Palisade with a small media size limit (to test the limit)."""
    tmp = tmp_path_factory.mktemp("palisade-media-peer")
    server = start_palisade_peer(tmp, media={"max_upload_size": PEER_MAX_SIZE})
    yield server
    server.stop()


def peer_cache_rows(peer, media_id: str) -> list[tuple]:
    sql = ("SELECT server_name, media_id, size, file_key FROM remote_media_cache "
           "WHERE media_id = %s")
    url = peer.server.database_url
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///"):]) as db:
            return db.execute(sql.replace("%s", "?"), (media_id,)).fetchall()
    import psycopg

    with psycopg.connect(url) as db:
        return db.execute(sql, (media_id,)).fetchall()


def peer_media_root(peer) -> Path:
    return peer.server.config_path.parent / "media"


@pytest.mark.live
def test_palisade_user_downloads_synapse_upload_then_from_cache(synapse, synapse_user, peer):
    data = os.urandom(100_000)
    media_id = synapse_upload(synapse, synapse_user, data, "application/pdf", "Arztbrief.pdf")
    alice = peer.register("alice", PASSWORD)
    path = f"{CLIENT_MEDIA}/download/{synapse.server_name}/{media_id}"

    r = alice.get(path, expect=None)
    assert r.status_code == 200, f"{r.text}\n{peer.log()[-3000:]}"
    assert r.content == data
    assert r.headers["Content-Type"] == "application/pdf"
    assert r.headers["Content-Disposition"] == 'attachment; filename="Arztbrief.pdf"'
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Security-Policy"].startswith("sandbox")
    assert fetches_seen_by(synapse, media_id) == 1

    (row,) = peer_cache_rows(peer, media_id)
    assert row[:3] == (synapse.server_name, media_id, len(data))
    assert (peer_media_root(peer) / row[3]).read_bytes() == data

    # Second download, with a file name in the path: from the cache, Synapse not asked again.
    r = alice.get(path + "/other.pdf", expect=None)
    assert r.status_code == 200 and r.content == data
    assert r.headers["Content-Disposition"] == 'attachment; filename="other.pdf"'
    assert fetches_seen_by(synapse, media_id) == 1


@pytest.mark.live
def test_palisade_user_gets_thumbnail_of_synapse_image(synapse, synapse_user, peer):
    media_id = synapse_upload(synapse, synapse_user, image_bytes((640, 480)), "image/png",
                              "photo.png")
    bob = peer.register("bob", PASSWORD)
    r = bob.get(f"{CLIENT_MEDIA}/thumbnail/{synapse.server_name}/{media_id}",
                params={"width": 96, "height": 96, "method": "crop"}, expect=None)
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (96, 96)
    assert r.headers["Content-Disposition"].startswith("inline")
    r = bob.get(f"{CLIENT_MEDIA}/download/{synapse.server_name}/{media_id}", expect=None)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert fetches_seen_by(synapse, media_id) == 1  # the thumbnail was made from the cache


@pytest.mark.live
def test_oversized_remote_media_is_502_too_large_and_nothing_cached(synapse, synapse_user,
                                                                    peer):
    media_id = synapse_upload(synapse, synapse_user, os.urandom(PEER_MAX_SIZE + 1),
                              "application/octet-stream", "big.bin")
    carol = peer.register("carol", PASSWORD)
    before = files_under(peer_media_root(peer))
    r = carol.get(f"{CLIENT_MEDIA}/download/{synapse.server_name}/{media_id}", expect=None)
    assert (r.status_code, r.json()["errcode"]) == (502, "M_TOO_LARGE"), r.text
    assert peer_cache_rows(peer, media_id) == []
    assert files_under(peer_media_root(peer)) == before  # nothing kept, nothing left staged


@pytest.mark.live
def test_unknown_remote_media_is_404(synapse, peer):
    dave = peer.register("dave", PASSWORD)
    r = dave.get(f"{CLIENT_MEDIA}/download/{synapse.server_name}/NoSuchMediaHere123",
                 expect=None)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND"), r.text


@pytest.mark.live
def test_synapse_user_downloads_palisade_upload(synapse, peer):
    """Synapse fetches over federation from our /_matrix/federation/v1/media/download."""
    erin = peer.register("erin", PASSWORD)
    data = os.urandom(50_000)
    r = httpx.post(peer.base_url + "/_matrix/media/v3/upload", params={"filename": "scan.pdf"},
                   content=data, timeout=30,
                   headers={"Authorization": f"Bearer {erin.user.access_token}",
                            "Content-Type": "application/pdf"})
    assert r.status_code == 200, r.text
    media_id = r.json()["content_uri"].rsplit("/", 1)[1]

    reader = synapse.client(synapse.register_user("reader", PASSWORD))
    r = reader.get(f"{CLIENT_MEDIA}/download/{peer.server_name}/{media_id}", expect=None)
    assert r.status_code == 200, f"{r.text}\n{synapse.log()[-3000:]}"
    assert r.content == data
    assert r.headers["Content-Type"] == "application/pdf"
    assert "scan.pdf" in r.headers["Content-Disposition"]
    # Synapse asked our new authenticated endpoint (no fallback to the legacy one).
    assert f"/_matrix/federation/v1/media/download/{media_id}" in synapse.log()
    assert "/_matrix/media/v3/download/" not in synapse.log()


@pytest.mark.live
def test_palisade_user_downloads_from_another_palisade(peer, tmp_path):
    """Palisade to Palisade: a second live server fetches (signed, TLS) from the first one's
    federation media endpoints and serves the content and thumbnails to its user."""
    other = start_palisade_peer(tmp_path)
    try:
        frank = peer.register("frank", PASSWORD)
        png = image_bytes((400, 300))
        r = httpx.post(peer.base_url + "/_matrix/media/v3/upload",
                       params={"filename": "röntgen.png"}, content=png, timeout=30,
                       headers={"Authorization": f"Bearer {frank.user.access_token}",
                                "Content-Type": "image/png"})
        assert r.status_code == 200, r.text
        media_id = r.json()["content_uri"].rsplit("/", 1)[1]

        gina = other.register("gina", PASSWORD)
        r = gina.get(f"{CLIENT_MEDIA}/download/{peer.server_name}/{media_id}", expect=None)
        assert r.status_code == 200, f"{r.text}\n{other.log()[-3000:]}"
        assert r.content == png
        assert r.headers["Content-Type"] == "image/png"
        assert r.headers["Content-Disposition"] == "inline; filename*=utf-8''r%C3%B6ntgen.png"
        r = gina.get(f"{CLIENT_MEDIA}/thumbnail/{peer.server_name}/{media_id}",
                     params={"width": 32, "height": 32, "method": "crop"}, expect=None)
        assert r.status_code == 200, r.text
        assert Image.open(io.BytesIO(r.content)).size == (32, 32)
        (row,) = peer_cache_rows(other, media_id)
        assert row[:3] == (peer.server_name, media_id, len(png))
    finally:
        other.stop()
