"""Server-side key backups: versions, the replacement rules for stored session keys, etag and
count, M_WRONG_ROOM_KEYS_VERSION, M_NOT_FOUND — and bad input stores nothing."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async

from audit.actions import AuditAction
from homeserver.models import RoomKeyBackup, RoomKeyBackupSession
from tests.accounts.conftest import aaudit_head, aaudit_since, amake_user
from tests.e2ee.clientkeys import login_device

pytestmark = pytest.mark.django_db(transaction=True)

ALGO = "m.megolm_backup.v1.curve25519-aes-sha2"
ROOM = "!ward5:localhost:8008"
SESSION = "uP7Z+2y/tR4wJ0bq6FqHxzvX1cC9aA3mE8kLnOpQrSt"  # Base64, with "+" and "/"

count_sessions = sync_to_async(lambda: RoomKeyBackupSession.objects.count())
count_versions = sync_to_async(lambda: RoomKeyBackup.objects.count())


def key(fmi: int = 0, fc: int = 0, verified: bool = False, tag: str = "a") -> dict:
    return {"first_message_index": fmi, "forwarded_count": fc, "is_verified": verified,
            "session_data": {"ephemeral": tag, "ciphertext": tag, "mac": tag}}


def path(room: str | None = None, session: str | None = None) -> str:
    p = "/room_keys/keys"
    if room is not None:
        p += "/" + quote(room, safe="")
    if session is not None:
        p += "/" + quote(session, safe="")
    return p


async def new_backup(api, dev, public_key: str = "pubkey") -> str:
    r = await api.call("POST", "/room_keys/version",
                       {"algorithm": ALGO, "auth_data": {"public_key": public_key}},
                       token=dev.token)
    assert r.status_code == 200, r.json()
    return r.json()["version"]


async def test_version_lifecycle_and_audit(api):
    dev = await login_device(api, await amake_user())
    r = await api.call("GET", "/room_keys/version", token=dev.token)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    head = await aaudit_head()
    v1 = await new_backup(api, dev, "k1")
    r = await api.call("GET", "/room_keys/version", token=dev.token)
    assert r.json() == {"algorithm": ALGO, "auth_data": {"public_key": "k1"}, "count": 0,
                        "etag": "0", "version": v1}
    v2 = await new_backup(api, dev, "k2")
    assert int(v2) > int(v1)
    assert (await api.call("GET", "/room_keys/version", token=dev.token)).json()["version"] == v2
    assert (await api.call("GET", f"/room_keys/version/{v1}", token=dev.token)).json()[
        "auth_data"] == {"public_key": "k1"}
    # Update auth_data only; the algorithm and version must match.
    r = await api.call("PUT", f"/room_keys/version/{v2}",
                       {"algorithm": ALGO, "auth_data": {"public_key": "k2", "signatures": {}},
                        "version": v2}, token=dev.token)
    assert r.status_code == 200
    for body in ({"algorithm": "other", "auth_data": {}},
                 {"algorithm": ALGO, "auth_data": {}, "version": v1}):
        r = await api.call("PUT", f"/room_keys/version/{v2}", body, token=dev.token)
        assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert (await api.call("GET", f"/room_keys/version/{v2}", token=dev.token)).json()[
        "auth_data"] == {"public_key": "k2", "signatures": {}}
    # Delete: idempotent for a deleted version, 404 for one that never existed.
    assert (await api.call("DELETE", f"/room_keys/version/{v2}", token=dev.token)).status_code \
        == 200
    assert (await api.call("DELETE", f"/room_keys/version/{v2}", token=dev.token)).status_code \
        == 200
    for method, version in (("DELETE", "999999"), ("GET", v2), ("GET", "abc"),
                            ("PUT", v2)):
        r = await api.call(method, f"/room_keys/version/{version}",
                           {"algorithm": ALGO, "auth_data": {}}, token=dev.token)
        assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND"), (method, version)
    # After deleting the newest, the older one is current again.
    assert (await api.call("GET", "/room_keys/version", token=dev.token)).json()["version"] == v1
    actions = [r.action for r in await aaudit_since(head)]
    assert actions.count(AuditAction.KEY_BACKUP_CREATED) == 2
    assert actions.count(AuditAction.KEY_BACKUP_UPDATED) == 1
    assert actions.count(AuditAction.KEY_BACKUP_DELETED) == 1
    # Backups are per user.
    other = await login_device(api, await amake_user())
    r = await api.call("GET", f"/room_keys/version/{v1}", token=other.token)
    assert r.status_code == 404


async def test_replacement_rules_etag_and_count(api):
    dev = await login_device(api, await amake_user())
    v = await new_backup(api, dev)
    url = path(ROOM, SESSION) + f"?version={v}"

    async def put(k: dict) -> dict:
        r = await api.call("PUT", url, k, token=dev.token)
        assert r.status_code == 200, r.json()
        return r.json()

    async def stored() -> dict:
        return (await api.call("GET", url, token=dev.token)).json()

    first = await put(key(fmi=5, fc=2, tag="first"))
    assert first["count"] == 1
    # Unverified, higher index: kept the existing key, etag unchanged.
    same = await put(key(fmi=6, fc=0, tag="worse"))
    assert same == first and (await stored())["session_data"]["ephemeral"] == "first"
    # Same index, lower forwarded_count: replaced.
    r = await put(key(fmi=5, fc=1, tag="fewer-forwards"))
    assert r["etag"] != first["etag"] and r["count"] == 1
    assert (await stored())["session_data"]["ephemeral"] == "fewer-forwards"
    # Lower first_message_index: replaced, even with more forwards.
    await put(key(fmi=1, fc=9, tag="earlier"))
    assert (await stored())["session_data"]["ephemeral"] == "earlier"
    # Verified beats unverified, whatever the index ...
    await put(key(fmi=50, fc=9, verified=True, tag="verified"))
    assert (await stored())["is_verified"] is True
    # ... and an unverified key never replaces a verified one.
    await put(key(fmi=0, fc=0, verified=False, tag="unverified"))
    assert (await stored())["session_data"]["ephemeral"] == "verified"
    # An exact tie keeps the stored key.
    await put(key(fmi=50, fc=9, verified=True, tag="tie"))
    assert (await stored())["session_data"]["ephemeral"] == "verified"

    # Room-level and all-rooms uploads, then the three GET levels.
    r = await api.call("PUT", path(ROOM) + f"?version={v}",
                       {"sessions": {"s2": key(tag="s2")}}, token=dev.token)
    assert r.json()["count"] == 2
    r = await api.call("PUT", path() + f"?version={v}",
                       {"rooms": {"!other:localhost:8008": {"sessions": {"s3": key(tag="s3")}}}},
                       token=dev.token)
    assert r.json()["count"] == 3
    everything = (await api.call("GET", path() + f"?version={v}", token=dev.token)).json()
    assert set(everything["rooms"]) == {ROOM, "!other:localhost:8008"}
    assert set(everything["rooms"][ROOM]["sessions"]) == {SESSION, "s2"}
    room = (await api.call("GET", path(ROOM) + f"?version={v}", token=dev.token)).json()
    assert room == everything["rooms"][ROOM]
    empty = (await api.call("GET", path("!none:localhost:8008") + f"?version={v}",
                            token=dev.token)).json()
    assert empty == {"sessions": {}}
    r = await api.call("GET", path(ROOM, "nope") + f"?version={v}", token=dev.token)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    version_info = (await api.call("GET", "/room_keys/version", token=dev.token)).json()
    assert version_info["count"] == 3

    # Deletes at each level.
    r = await api.call("DELETE", path(ROOM, SESSION) + f"?version={v}", token=dev.token)
    assert r.json()["count"] == 2
    r = await api.call("DELETE", path(ROOM) + f"?version={v}", token=dev.token)
    assert r.json()["count"] == 1
    r = await api.call("DELETE", path() + f"?version={v}", token=dev.token)
    assert r.json()["count"] == 0 and r.json()["etag"] != version_info["etag"]


async def test_wrong_or_unknown_version(api):
    dev = await login_device(api, await amake_user())
    r = await api.call("PUT", path(ROOM, SESSION) + "?version=1", key(), token=dev.token)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    old = await new_backup(api, dev)
    new = await new_backup(api, dev)
    r = await api.call("PUT", path(ROOM, SESSION) + f"?version={old}", key(), token=dev.token)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_WRONG_ROOM_KEYS_VERSION")
    assert r.json()["current_version"] == new
    r = await api.call("PUT", path(ROOM, SESSION), key(), token=dev.token)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_MISSING_PARAM")
    await api.call("DELETE", f"/room_keys/version/{new}", token=dev.token)
    for method in ("GET", "DELETE"):
        r = await api.call(method, path() + f"?version={new}", token=dev.token)
        assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    assert await count_sessions() == 0


async def test_bad_key_data_and_version_bodies_store_nothing(api):
    dev = await login_device(api, await amake_user())
    for body in ({}, {"algorithm": ALGO}, {"algorithm": "", "auth_data": {}},
                 {"algorithm": ALGO, "auth_data": "x"}):
        r = await api.call("POST", "/room_keys/version", body, token=dev.token)
        assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON"), body
    assert await count_versions() == 0
    v = await new_backup(api, dev)
    bad_keys = [
        {k: val for k, val in key().items() if k != "session_data"},
        {**key(), "first_message_index": "0"},
        {**key(), "first_message_index": -1},
        {**key(), "forwarded_count": 1.5},
        {**key(), "is_verified": "yes"},
        {**key(), "session_data": "opaque"},
    ]
    for bad in bad_keys:
        # A good key next to the bad one is not stored either.
        r = await api.call("PUT", path() + f"?version={v}",
                           {"rooms": {ROOM: {"sessions": {"good": key(), "bad": bad}}}},
                           token=dev.token)
        assert r.status_code == 400, bad
        assert r.json()["errcode"] in ("M_BAD_JSON", "M_INVALID_PARAM")
        r = await api.call("PUT", path(ROOM, SESSION) + f"?version={v}", bad, token=dev.token)
        assert r.status_code == 400, bad
    for body in ({"rooms": []}, {"rooms": {ROOM: {"sessions": []}}}, {"rooms": {ROOM: 1}}):
        r = await api.call("PUT", path() + f"?version={v}", body, token=dev.token)
        assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON"), body
    assert await count_sessions() == 0
    info = (await api.call("GET", "/room_keys/version", token=dev.token)).json()
    assert (info["count"], info["etag"]) == (0, "0")
