"""require_auth: where tokens come from, what failures look like, and what the database keeps."""

from __future__ import annotations

import hashlib

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from homeserver.api.auth import Requester, require_auth
from homeserver.models import AccessToken, Account, RefreshToken
from homeserver.protocol.errors import MatrixError
from homeserver.services.accounts.sessions import authenticate_token, now_ms, start_session
from tests.accounts.conftest import amake_user, make_user

pytestmark = pytest.mark.django_db(transaction=True)


async def test_missing_token(api):
    resp = await api.call("GET", "/account/whoami")
    assert resp.status_code == 401
    assert resp.json()["errcode"] == "M_MISSING_TOKEN"


async def test_non_bearer_authorization_header(api):
    resp = await api.client.get("/_matrix/client/v3/account/whoami",
                                headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert (resp.status_code, resp.json()["errcode"]) == (401, "M_MISSING_TOKEN")


async def test_unknown_token_is_not_a_soft_logout(api):
    resp = await api.call("GET", "/account/whoami", token="pal_not-a-real-token")
    assert resp.status_code == 401
    body = resp.json()
    assert body["errcode"] == "M_UNKNOWN_TOKEN"
    assert body.get("soft_logout", False) is False


async def test_expired_token_is_a_soft_logout(api):
    user_id = await amake_user()
    body = await api.login(user_id, refresh_token=True)
    await sync_to_async(
        lambda: AccessToken.objects.filter(user_id=user_id).update(valid_until_ms=now_ms() - 1)
    )()
    resp = await api.call("GET", "/account/whoami", token=body["access_token"])
    assert resp.status_code == 401
    assert resp.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert resp.json()["soft_logout"] is True
    # ...and the refresh token recovers the same device.
    resp = await api.call("POST", "/refresh", {"refresh_token": body["refresh_token"]})
    who = await api.call("GET", "/account/whoami", token=resp.json()["access_token"])
    assert who.json()["device_id"] == body["device_id"]


async def test_deprecated_query_parameter(api):
    user_id = await amake_user()
    token = (await api.login(user_id))["access_token"]
    resp = await api.client.get(f"/_matrix/client/v3/account/whoami?access_token={token}")
    assert resp.status_code == 200
    assert resp.json()["user_id"] == user_id


async def test_require_auth_returns_requester(api, rf):
    user_id = await amake_user()
    login = await api.login(user_id)
    request = rf.get("/", HTTP_AUTHORIZATION=f"Bearer {login['access_token']}")
    requester = await require_auth(request)
    assert isinstance(requester, Requester)
    assert (requester.user_id, requester.device_id, requester.is_admin) == (
        user_id, login["device_id"], False)
    assert requester.access_token_id > 0


async def test_admin_flag(api, rf):
    user_id = await amake_user(admin=True)
    login = await api.login(user_id)
    request = rf.get("/", HTTP_AUTHORIZATION=f"Bearer {login['access_token']}")
    assert (await require_auth(request)).is_admin is True


async def test_tokens_are_stored_only_as_sha256(api):
    user_id = await amake_user()
    body = await api.login(user_id, refresh_token=True)

    def stored():
        rows = list(AccessToken.objects.filter(user_id=user_id).values_list("token_hash",
                                                                              flat=True))
        rows += list(RefreshToken.objects.filter(user_id=user_id).values_list("token_hash",
                                                                              flat=True))
        with connection.cursor() as cur:
            dump = []
            for table in ("access_tokens", "refresh_tokens", "devices", "accounts"):
                cur.execute(f"SELECT * FROM {table}")
                dump += [str(v) for row in cur.fetchall() for v in row]
        return rows, dump

    hashes, dump = await sync_to_async(stored)()
    for raw in (body["access_token"], body["refresh_token"]):
        assert hashlib.sha256(raw.encode()).hexdigest() in hashes
        assert not any(raw in v for v in dump)


def test_authentication_is_one_query():
    user_id = make_user()
    with transaction.atomic():
        session = start_session(user_id, device_id=None, display_name="", refreshable=False)
    authenticate_token(session.access_token, ip="192.0.2.1")  # first use: last-seen update
    with CaptureQueriesContext(connection) as ctx:
        auth = authenticate_token(session.access_token, ip="192.0.2.1")
    assert auth.user_id == user_id
    assert len(ctx.captured_queries) == 1, ctx.captured_queries


async def test_deactivated_account_token_is_rejected(api):
    user_id = await amake_user()
    token = (await api.login(user_id))["access_token"]
    await sync_to_async(
        lambda: Account.objects.filter(user_id=user_id).update(deactivated=True)
    )()
    resp = await api.call("GET", "/account/whoami", token=token)
    assert (resp.status_code, resp.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    with pytest.raises(MatrixError):
        await sync_to_async(authenticate_token)(token)
