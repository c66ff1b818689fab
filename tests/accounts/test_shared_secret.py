"""Shared-secret registration (GET/POST /_synapse/admin/v1/register)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from asgiref.sync import sync_to_async

from audit.actions import ActorType, AuditAction
from homeserver.models import Account, RegistrationNonce
from homeserver.services.accounts.sessions import now_ms
from tests.accounts.conftest import (
    PASSWORD,
    SHARED_SECRET,
    aaudit_head,
    aaudit_since,
    configure,
    server_name,
    unique_localpart,
)

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/_synapse/admin/v1/register"


def mac(nonce: str, username: str, password: str, admin: bool,
        secret: str = SHARED_SECRET) -> str:
    # Written from the protocol description, independently of the server's implementation.
    msg = b"\x00".join([nonce.encode(), username.encode(), password.encode(),
                        b"admin" if admin else b"notadmin"])
    return hmac.new(secret.encode(), msg, hashlib.sha1).hexdigest()


async def nonce(api) -> str:
    resp = await api.call("GET", URL)
    assert resp.status_code == 200
    return resp.json()["nonce"]


async def test_register_with_correct_mac(api):
    n = await nonce(api)
    username = unique_localpart()
    head = await aaudit_head()
    resp = await api.call("POST", URL, {"nonce": n, "username": username, "password": PASSWORD,
                                        "admin": True, "displayname": "Ops",
                                        "mac": mac(n, username, PASSWORD, True)})
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert body["user_id"] == f"@{username}:{server_name()}"
    assert body["home_server"] == server_name()
    who = await api.call("GET", "/account/whoami", token=body["access_token"])
    assert who.json()["device_id"] == body["device_id"]
    account = await sync_to_async(Account.objects.get)(user_id=body["user_id"])
    assert account.is_admin
    records = await aaudit_since(head)
    assert [r.action for r in records] == [AuditAction.USER_CREATED, AuditAction.DEVICE_ADDED]
    assert records[0].actor_type == ActorType.ADMIN
    assert records[0].details_dict == {"admin": True, "method": "shared_secret"}
    prof = await api.call("GET", f"/profile/{body['user_id']}", token=body["access_token"])
    assert prof.json()["displayname"] == "Ops"


async def test_incorrect_mac_creates_nothing(api):
    n = await nonce(api)
    username = unique_localpart()
    resp = await api.call("POST", URL, {"nonce": n, "username": username, "password": PASSWORD,
                                        "admin": True,
                                        "mac": mac(n, username, PASSWORD, False)})
    assert (resp.status_code, resp.json()["errcode"]) == (403, "M_FORBIDDEN")
    resp = await api.call("POST", URL, {"nonce": await nonce(api), "username": username,
                                        "password": PASSWORD, "admin": False,
                                        "mac": mac(n, username, PASSWORD, False, "other")})
    assert resp.status_code == 403
    assert await sync_to_async(Account.objects.count)() == 0


async def test_replayed_nonce_is_refused(api):
    n = await nonce(api)
    username = unique_localpart()
    body = {"nonce": n, "username": username, "password": PASSWORD, "admin": False,
            "mac": mac(n, username, PASSWORD, False)}
    assert (await api.call("POST", URL, body)).status_code == 200
    other = unique_localpart()
    replay = {**body, "username": other, "mac": mac(n, other, PASSWORD, False)}
    resp = await api.call("POST", URL, replay)
    assert resp.status_code == 400
    assert "nonce" in resp.json()["error"]
    assert await sync_to_async(Account.objects.count)() == 1


async def test_nonce_spent_by_a_failed_attempt(api):
    n = await nonce(api)
    username = unique_localpart()
    await api.call("POST", URL, {"nonce": n, "username": username, "password": PASSWORD,
                                 "admin": False, "mac": "00" * 20})
    resp = await api.call("POST", URL, {"nonce": n, "username": username, "password": PASSWORD,
                                        "admin": False, "mac": mac(n, username, PASSWORD, False)})
    assert resp.status_code == 400


async def test_expired_nonce(api):
    n = await nonce(api)
    await sync_to_async(
        lambda: RegistrationNonce.objects.filter(nonce=n).update(created_ts=now_ms() - 61_000)
    )()
    username = unique_localpart()
    resp = await api.call("POST", URL, {"nonce": n, "username": username, "password": PASSWORD,
                                        "admin": False, "mac": mac(n, username, PASSWORD, False)})
    assert resp.status_code == 400


async def test_existing_user_and_invalid_username(api):
    n = await nonce(api)
    resp = await api.call("POST", URL, {"nonce": n, "username": "Bad Name",
                                        "password": PASSWORD, "admin": False,
                                        "mac": mac(n, "Bad Name", PASSWORD, False)})
    assert resp.json()["errcode"] == "M_INVALID_USERNAME"
    username = unique_localpart()
    for expected in (200, 400):
        n = await nonce(api)
        resp = await api.call("POST", URL, {"nonce": n, "username": username,
                                            "password": PASSWORD, "admin": False,
                                            "mac": mac(n, username, PASSWORD, False)})
        assert resp.status_code == expected
    assert resp.json()["errcode"] == "M_USER_IN_USE"


async def test_disabled_without_secret(api, settings):
    configure(settings, registration_shared_secret="")
    resp = await api.call("GET", URL)
    assert resp.status_code == 400
    assert "not enabled" in resp.json()["error"]
