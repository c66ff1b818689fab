"""Media administration: quarantine (404 to everyone, files kept), deletion (rows and files
gone), usage per user, and the removals that follow an erased account or a purged room —
each audited, each admin endpoint refused to non-admins."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async

from audit.actions import AuditAction
from homeserver.models import LocalMedia
from homeserver.services.media.admin import delete_media_by_uris
from tests.accounts.conftest import aaudit_head, aaudit_since
from tests.accounts.test_account import uia
from tests.media.conftest import (
    V1,
    acounts,
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
ADMIN = "/_synapse/admin/v1"


async def uploaded(api, token, data=b"some content", content_type="text/plain") -> str:
    r = await upload(api, token, data, content_type)
    assert r.status_code == 200, r.json()
    return media_id_of(r.json()["content_uri"])


def ref(media_id: str) -> str:
    return f"{server_name()}/{media_id}"


async def test_admin_endpoints_refuse_non_admins(api):
    user, tok = await session(api)
    media_id = await uploaded(api, tok)
    user_q = quote(user)
    for method, path in [
        ("POST", f"{ADMIN}/media/quarantine/{ref(media_id)}"),
        ("POST", f"{ADMIN}/media/unquarantine/{ref(media_id)}"),
        ("DELETE", f"{ADMIN}/media/{ref(media_id)}"),
        ("GET", f"{ADMIN}/users/{user_q}/media"),
        ("DELETE", f"{ADMIN}/users/{user_q}/media"),
        ("GET", f"{ADMIN}/statistics/users/media"),
    ]:
        r = await api.call(method, path, token=tok)
        assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN"), path
        r = await api.call(method, path)
        assert (r.status_code, r.json()["errcode"]) == (401, "M_MISSING_TOKEN"), path
    assert await sync_to_async(LocalMedia.objects.filter(quarantined_by="").count)() == 1


async def test_quarantine_hides_media_from_everyone_and_is_audited(api, media_store):
    admin, admin_tok = await session(api, admin=True)
    uploader, tok = await session(api)
    media_id = await uploaded(api, tok, image_bytes((400, 300)), "image/png")
    thumb = f"{V1}/thumbnail/{ref(media_id)}?width=96&height=96&method=crop"
    assert (await get(api, thumb, tok)).status_code == 200
    head = await aaudit_head()

    r = await api.call("POST", f"{ADMIN}/media/quarantine/{ref(media_id)}", token=admin_tok)
    assert (r.status_code, r.json()) == (200, {})
    for token in (tok, admin_tok):
        for path in (f"{V1}/download/{ref(media_id)}", thumb):
            r = await get(api, path, token)
            assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    assert await acounts(media_store) == (1, 1, 2)  # kept, as evidence
    # Quarantining again changes nothing and records nothing.
    assert (await api.call("POST", f"{ADMIN}/media/quarantine/{ref(media_id)}",
                           token=admin_tok)).status_code == 200

    r = await api.call("POST", f"{ADMIN}/media/unquarantine/{ref(media_id)}", token=admin_tok)
    assert r.status_code == 200
    assert (await get(api, f"{V1}/download/{ref(media_id)}", tok)).status_code == 200

    records = await aaudit_since(head)
    assert [(r.action, r.actor, r.actor_type, r.target) for r in records] == [
        (AuditAction.MEDIA_QUARANTINED, admin, "admin", f"mxc://{ref(media_id)}"),
        (AuditAction.MEDIA_UNQUARANTINED, admin, "admin", f"mxc://{ref(media_id)}"),
    ]
    details = json.loads(records[0].details)
    assert details["uploader"] == uploader and len(details["sha256"]) == 64


async def test_quarantine_and_delete_unknown_media(api):
    _, admin_tok = await session(api, admin=True)
    for method, path, status, errcode in [
        ("POST", f"{ADMIN}/media/quarantine/{server_name()}/AAAAAAAAAAAA", 404, "M_NOT_FOUND"),
        ("POST", f"{ADMIN}/media/quarantine/elsewhere.example/AAAA", 404, "M_NOT_FOUND"),
        ("POST", f"{ADMIN}/media/quarantine/{server_name()}/bad$id", 400, "M_INVALID_PARAM"),
        ("DELETE", f"{ADMIN}/media/{server_name()}/AAAAAAAAAAAA", 404, "M_NOT_FOUND"),
        ("GET", f"{ADMIN}/media/{server_name()}/AAAAAAAAAAAA", 405, "M_UNRECOGNIZED"),
        ("GET", f"{ADMIN}/users/not-a-user-id/media", 400, "M_INVALID_PARAM"),
        ("GET", f"{ADMIN}/statistics/users/media?limit=0", 400, "M_INVALID_PARAM"),
    ]:
        r = await api.call(method, path, token=admin_tok)
        assert (r.status_code, r.json()["errcode"]) == (status, errcode), path


async def test_delete_removes_rows_files_and_thumbnails(api, media_store):
    admin, admin_tok = await session(api, admin=True)
    _, tok = await session(api)
    media_id = await uploaded(api, tok, image_bytes((400, 300)), "image/png")
    other = await uploaded(api, tok)
    await get(api, f"{V1}/thumbnail/{ref(media_id)}?width=32&height=32&method=crop", tok)
    assert await acounts(media_store) == (2, 1, 3)
    head = await aaudit_head()

    r = await api.call("DELETE", f"{ADMIN}/media/{ref(media_id)}", token=admin_tok)
    assert (r.status_code, r.json()) == (200, {"deleted_media": [media_id], "total": 1})
    assert await acounts(media_store) == (1, 0, 1)
    assert [p.name for p in files_under(media_store)] == [other]
    r = await get(api, f"{V1}/download/{ref(media_id)}", tok)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    r = await api.call("DELETE", f"{ADMIN}/media/{ref(media_id)}", token=admin_tok)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")

    [rec] = await aaudit_since(head)
    assert (rec.action, rec.actor, rec.actor_type) == (AuditAction.MEDIA_DELETED, admin, "admin")
    details = json.loads(rec.details)
    assert (details["reason"], details["count"], details["media_ids"]) == ("admin", 1, [media_id])


async def test_usage_listing_and_deleting_a_users_media(api, media_store):
    _, admin_tok = await session(api, admin=True)
    alice, a_tok = await session(api)
    bob, b_tok = await session(api)
    a1 = await uploaded(api, a_tok, b"x" * 100)
    a2 = await uploaded(api, a_tok, b"y" * 250)
    await uploaded(api, b_tok, b"z" * 10)
    await api.call("POST", "/_matrix/media/v1/create", token=a_tok)  # pending: not usage

    r = await api.call("GET", f"{ADMIN}/statistics/users/media", token=admin_tok)
    assert r.json() == {"total": 2, "users": [
        {"user_id": alice, "media_count": 2, "media_length": 350},
        {"user_id": bob, "media_count": 1, "media_length": 10},
    ]}
    r = await api.call("GET", f"{ADMIN}/statistics/users/media?limit=1", token=admin_tok)
    assert r.json()["next_token"] == 1 and len(r.json()["users"]) == 1
    r = await api.call("GET", f"{ADMIN}/statistics/users/media?search_term={quote(bob)}",
                       token=admin_tok)
    assert [u["user_id"] for u in r.json()["users"]] == [bob]

    r = await api.call("GET", f"{ADMIN}/users/{quote(alice)}/media", token=admin_tok)
    body = r.json()
    assert (body["total"], body["media_count"], body["media_length"]) == (3, 2, 350)
    listed = {m["media_id"]: m for m in body["media"]}
    assert {a1, a2} < set(listed)
    assert listed[a2]["media_length"] == 250 and listed[a2]["media_type"] == "text/plain"

    r = await api.call("DELETE", f"{ADMIN}/users/{quote(alice)}/media", token=admin_tok)
    assert r.status_code == 200 and r.json()["total"] == 3
    assert await acounts(media_store) == (1, 0, 1)


async def test_erasing_an_account_removes_its_media(api, media_store):
    alice, a_tok = await session(api)
    _, b_tok = await session(api)
    mine = await uploaded(api, a_tok, image_bytes((300, 300)), "image/png")
    await get(api, f"{V1}/thumbnail/{ref(mine)}?width=32&height=32&method=crop", a_tok)
    theirs = await uploaded(api, b_tok)
    head = await aaudit_head()
    r = await uia(api, "POST", "/account/deactivate", {"erase": True}, a_tok, alice)
    assert r.status_code == 200, r.json()
    assert await acounts(media_store) == (1, 0, 1)
    assert (await get(api, f"{V1}/download/{ref(theirs)}", b_tok)).status_code == 200
    r = await get(api, f"{V1}/download/{ref(mine)}", b_tok)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    deleted = [r for r in await aaudit_since(head) if r.action == AuditAction.MEDIA_DELETED]
    assert [(r.actor_type, r.target) for r in deleted] == [("system", alice)]
    assert json.loads(deleted[0].details)["reason"] == "account_erased"


async def test_plain_deactivation_keeps_media_unless_configured(api, settings, media_store):
    alice, a_tok = await session(api)
    await uploaded(api, a_tok)
    r = await uia(api, "POST", "/account/deactivate", {}, a_tok, alice)
    assert r.status_code == 200, r.json()
    assert await acounts(media_store) == (1, 0, 1)

    configure(settings, media={"remove_on_deactivation": True})
    bob, b_tok = await session(api)
    await uploaded(api, b_tok)
    r = await uia(api, "POST", "/account/deactivate", {}, b_tok, bob)
    assert r.status_code == 200, r.json()
    assert await acounts(media_store) == (1, 0, 1)


async def test_purged_room_media_is_removed_by_uri(api, media_store):
    _, tok = await session(api)
    kept = await uploaded(api, tok)
    gone = [await uploaded(api, tok), await uploaded(api, tok)]
    head = await aaudit_head()
    uris = [f"mxc://{ref(m)}" for m in gone] + [
        "mxc://elsewhere.example/AAAA", "mxc://bad uri/../x", "https://not-mxc",
        f"mxc://{ref(gone[0])}"]  # remote, malformed, not mxc, repeated: skipped
    deleted = await sync_to_async(delete_media_by_uris)(uris, target="!room:example")
    assert deleted == sorted(gone)
    assert await acounts(media_store) == (1, 0, 1)
    assert [p.name for p in files_under(media_store)] == [kept]
    [rec] = await aaudit_since(head)
    assert (rec.action, rec.actor_type, rec.target) == (AuditAction.MEDIA_DELETED, "system",
                                                        "!room:example")
    assert json.loads(rec.details)["reason"] == "room_purged"
    assert await sync_to_async(delete_media_by_uris)(uris, target="!room:example") == []
