"""Fetching another server's keys over real TLS, and answering as a notary."""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import sync_to_async

from homeserver.protocol.unpadded_base64 import decode_base64
from homeserver.services.federation import client, keyring
from homeserver.storage.server_keys import keys_for
from tests.accounts.conftest import configure
from tests.federation.tls import self_signed
from tests.live_server import free_port, start_server

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """A second Palisade: client API on plain HTTP, federation on TLS at 127.0.0.1:PORT."""
    tmp = tmp_path_factory.mktemp("remote")
    cert, key = self_signed(tmp)
    client_port, fed_port = free_port(), free_port()
    server = start_server(tmp, server_name=f"127.0.0.1:{fed_port}", listeners=[
        {"bind": "127.0.0.1", "port": client_port, "resources": ["client"]},
        {"bind": "127.0.0.1", "port": fed_port, "resources": ["federation"],
         "tls_certificate": str(cert), "tls_private_key": str(key)},
    ], public_baseurl=f"http://127.0.0.1:{client_port}/")
    yield server
    server.stop()


@pytest.fixture
def loopback_federation(settings):
    configure(settings, federation={"verify_tls": False, "allow_private_addresses": True})


async def test_fetch_and_verify_remote_keys(remote, loopback_federation):
    keys = await keyring.fetch_keys_directly(remote.server_name)
    assert keys and all(k.key_id.startswith("ed25519:") for k in keys)
    stored = await sync_to_async(keys_for)(remote.server_name)
    assert {k.key_id for k in stored} == {k.key_id for k in keys}
    raw = await keyring.get_verify_key(remote.server_name, keys[0].key_id)
    assert raw == decode_base64(keys[0].verify_key)


async def test_notary_answers_with_both_signatures(remote, loopback_federation, settings):
    from django.test import AsyncClient

    r = await AsyncClient().get(f"/_matrix/key/v2/query/{remote.server_name}")
    assert r.status_code == 200
    (doc,) = r.json()["server_keys"]
    assert set(doc["signatures"]) == {remote.server_name, settings.PALISADE.server_name}


async def test_ssrf_guard_and_tls_verification(remote, settings):
    # Default settings: loopback destinations are refused before any connection.
    with pytest.raises(client.FederationError, match="private or loopback"):
        await client.request("GET", remote.server_name, "/_matrix/key/v2/server")
    # Loopback allowed but certificates verified: the self-signed peer is refused.
    configure(settings, federation={"allow_private_addresses": True, "verify_tls": True})
    with pytest.raises(client.FederationError):
        await client.request("GET", remote.server_name, "/_matrix/key/v2/server")


async def test_destination_off_the_allow_list_is_never_contacted(remote, settings):
    configure(settings, federation={"allow_list": ("friend.example",), "verify_tls": False,
                                    "allow_private_addresses": True})
    from homeserver.protocol.errors import MatrixError

    with pytest.raises(MatrixError) as e:
        await client.request("GET", remote.server_name, "/_matrix/key/v2/server")
    assert e.value.status == 403


def test_plain_http_client_listener_does_not_serve_federation(remote):
    base = remote.base_url  # the client listener
    r = httpx.get(base + "/_matrix/key/v2/server", timeout=10)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_UNRECOGNIZED")
