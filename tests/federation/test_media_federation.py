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

import email.parser
import email.policy
import io
import os
import sqlite3
import time
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
