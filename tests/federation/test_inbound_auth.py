"""Inbound X-Matrix authentication and the federation allow-list at the transport layer."""

from __future__ import annotations

import time

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import AsyncClient

from audit.models import AuditRecord
from compliance.federation_access import federation_request_policy
from compliance.hooks import Hook, _registry
from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.signing import generate_signing_key, public_key_base64, sign_json
from homeserver.protocol.xmatrix import authorization_header
from homeserver.services.accounts.register import create_user
from homeserver.storage.server_keys import StoredKey, store_key
from tests.accounts.conftest import configure

pytestmark = pytest.mark.django_db(transaction=True)

REMOTE = "remote.example:8448"
KEY = generate_signing_key()


@pytest.fixture(autouse=True)
def remote_key_known():
    """As if we had fetched remote.example's keys before (its key server is not running)."""
    doc = sign_json({"server_name": REMOTE, "valid_until_ts": int(time.time() * 1000) + 3600_000,
                     "verify_keys": {KEY.key_id: {"key": public_key_base64(KEY)}}}, REMOTE, KEY)
    store_key(StoredKey(REMOTE, KEY.key_id, public_key_base64(KEY), doc["valid_until_ts"], None,
                        encode_canonical_json(doc).decode()), 0)


def test_the_allow_list_policy_is_registered_at_start():
    assert federation_request_policy in _registry[Hook.FEDERATION_REQUEST]


def signed_get(path: str, *, origin: str = REMOTE, key=KEY, destination: str | None = None,
               method: str = "GET", content=None) -> dict:
    dest = destination or settings.PALISADE.server_name
    return {"headers": {"Authorization": authorization_header(method, path, origin, dest,
                                                               content, key)}}


async def profile_path(user: str) -> str:
    return f"/_matrix/federation/v1/query/profile?user_id={user.replace('@', '%40')}"


@pytest.fixture
def local_user():
    from audit.actions import ActorType

    user, _ = create_user("doc", password=None, displayname="Dr. Who", actor="t",
                          actor_type=ActorType.SYSTEM, method="t")
    return user


async def test_signed_request_is_answered(local_user):
    path = await profile_path(local_user)
    r = await AsyncClient().get(path, **signed_get(path))
    assert r.status_code == 200, r.json()
    assert r.json() == {"displayname": "Dr. Who"}


@pytest.mark.parametrize("case", ["missing", "malformed", "forged", "other_destination",
                                  "unknown_key", "tampered_path"])
async def test_unsigned_or_forged_requests_get_401(local_user, case):
    path = await profile_path(local_user)
    headers = signed_get(path)
    if case == "missing":
        headers = {}
    elif case == "malformed":
        headers = {"headers": {"Authorization": "X-Matrix nonsense"}}
    elif case == "forged":
        headers = signed_get(path, key=generate_signing_key(KEY.version))
    elif case == "other_destination":
        headers = signed_get(path, destination="someone.else")
    elif case == "unknown_key":
        headers = signed_get(path, key=generate_signing_key("other"))
    elif case == "tampered_path":
        path = path + "&field=displayname"
    r = await AsyncClient().get(path, **headers)
    assert (r.status_code, r.json()["errcode"]) == (401, "M_UNAUTHORIZED")


async def test_origin_off_the_allow_list_gets_403_before_anything_and_is_audited(
        settings, local_user):
    configure(settings, federation={"allow_list": ("friend.example",)})
    before = await sync_to_async(AuditRecord.objects.count)()
    path = await profile_path(local_user)
    r = await AsyncClient().get(path, **signed_get(path))
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    records = await sync_to_async(list)(AuditRecord.objects.order_by("seq")[before:])
    assert len(records) == 1
    details = records[0].details if isinstance(records[0].details, dict) else orjson.loads(
        records[0].details)
    assert records[0].actor == REMOTE
    assert details["rule"] == "federation.allow_list"


async def test_deny_list_wins_and_subdomain_wildcards(settings, local_user):
    configure(settings, federation={"allow_list": ("*.example",), "deny_list": (REMOTE,)})
    path = await profile_path(local_user)
    r = await AsyncClient().get(path, **signed_get(path))
    assert r.status_code == 403
    configure(settings, federation={"allow_list": ("*.example",), "deny_list": ()})
    r = await AsyncClient().get(path, **signed_get(path))
    assert r.status_code == 200


async def test_unknown_profile_and_bad_params(local_user):
    path = "/_matrix/federation/v1/query/profile"
    r = await AsyncClient().get(path, **signed_get(path))
    assert (r.status_code, r.json()["errcode"]) == (400, "M_MISSING_PARAM")
    path = await profile_path(f"@nobody:{settings.PALISADE.server_name}")
    r = await AsyncClient().get(path, **signed_get(path))
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
